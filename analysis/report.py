"""Plain-text reports of critical-time results (:class:`symbreak.theory.critical.CriticalTimes` of a
theory model, :class:`symbreak.analysis.critical.DatasetCriticalTimes` of a dataset): what was
analysed, one row per critical time and event, and one sentence saying what t_c is (a pitchfork
crossing, a fold or an imperfect pitchfork's closest approach; Raya & Ambrogioni 2023)."""
from __future__ import annotations

import pandas as pd


def describe(config: dict) -> str:
    """'vp-linear (beta_min=0.1, beta_max=20, T=1)' from a resolved config."""
    params = ", ".join(f"{k}={v}" for k, v in config.items() if k != "name")
    return f"{config.get('name', '?')} ({params})" if params else str(config.get("name", "?"))


def _table_text(table, discrete: bool) -> str:
    """A critical-times table as text: integer steps, the own-step column only for discrete schedules."""
    if discrete:
        table["step"] = table["step"].astype("Int64")
    else:
        table = table.drop(columns="step")
    if "ddpm_step" in table:
        table["ddpm_step"] = table["ddpm_step"].astype("Int64")
    with pd.option_context("display.max_colwidth", 90, "display.width", 200):
        return table.to_string(index=False, na_rep="-", float_format="{:.6g}".format)


def critical_times_text(ct) -> str:
    """The readable report: what was analysed, then one row per critical time and event."""
    head = [f"data:      {describe(ct.data)}", f"schedule:  {describe(ct.schedule.config())}",
            f"dynamics:  {ct.dynamics} ({ct.method}); Lambda = {ct.lambda_max:.6g}"]
    if ct.branch is not None and ct.branch.status != "complete":
        head.append(f"branch:    {ct.branch.status}")
    return "\n".join(head) + "\n\n" + _table_text(ct.table(), ct.schedule.discrete)


def reading(result) -> str:
    """One sentence saying what t_c is: a crossing, a fold, an imperfect pitchfork or none (and why)."""
    t_c = result.quantity("critical")
    if t_c is None:
        return f"no critical time: {result.absent.get('critical', 'not found')}"
    where = f"t = {t_c.t:.6g} (alpha = {t_c.alpha:.6g}, logsnr = {t_c.logsnr:.6g})"
    route = result.primary.method
    if result.kind == "closest-approach":
        return (f"{route}: imperfect pitchfork at {where}: the top eigenvalue of J/beta comes within "
                f"{-result.margin_c:.3g} of zero and turns back (closest approach, margin {result.margin_c:.4g})")
    if result.kind == "fold":
        return f"{route}: the central branch ends in a fold at {where} (margin {result.margin_c:.3g})"
    return f"{route}: the centre loses stability ({result.kind}) at {where}"


def dataset_text(result) -> str:
    """The readable report of a dataset: provenance, subset, spectrum, the table and one reading."""
    data = result.data
    head = [f"data:      {data.get('name')} ({data.get('source')}): N = {result.n_points}, d = {result.dim}, "
            f"shape {tuple(result.shape)}",
            f"scaling:   {result.scaling}",
            f"schedule:  {describe(result.schedule.config())}",
            f"dynamics:  {result.dynamics}; method {result.method}; Lambda = {result.lambda_max:.6g}"]
    if result.spectrum is not None:
        head.append(f"spectrum:  {result.spectrum.method} route, top {result.spectrum.k} of {result.dim} eigenvalues"
                    + ("" if result.spectrum.k == result.dim else
                       f" (the other {result.dim - result.spectrum.k} set to the residual variance "
                       f"{result.spectrum.residual_variance:.4g} for the collapse estimate)"))
    if result.exact is not None:
        sub = result.subset
        head.append(f"exact:     {result.n_exact} points" + (
            f" (a random subset of {sub['max_points']} of {sub['of']}, seed {sub['seed']})" if sub else " (all)")
            + f"; branch {result.exact.branch.status}")
    if result.soft_overlap is not None:
        head.append(f"soft dir.: |cos| with the top covariance eigenvector = {result.soft_overlap:.4f}")
    if result.soft_direction is not None and result.dim <= 8:
        head.append("soft dir.: " + ", ".join(f"{v:.4g}" for v in result.soft_direction.ravel()))
    note = ("ddpm_step: " + ("the schedule's own step" if result.schedule.discrete else
                             "step of the standard 1000-step DDPM schedule at the same logsnr"))
    return ("\n".join(head) + "\n\n" + _table_text(result.table(), result.schedule.discrete) + "\n\n"
            + reading(result) + "\n" + "".join(line + "\n" for line in extra_lines(result)) + note)


def _interval(label: str, ci: tuple[float, float] | None, level: float | None) -> list[str]:
    return [] if ci is None else [f"{label} = [{ci[0]:.6g}, {ci[1]:.6g}] ({level:g} confidence)"]


def extra_lines(result) -> list[str]:
    """t_c_ci and t_c_gaussian_ci (with their level), each later event's hierarchy summary (a successive
    bifurcation of the committed branch, never t_c) and every note."""
    level = None if result.bootstrap is None else result.bootstrap.get("level")
    lines = _interval("t_c_ci", result.t_c_ci, level) + _interval("t_c_gaussian_ci", result.t_c_gaussian_ci, level)
    lines += [f"later {h['kind']} at t = {h['t']:.6g}: {h['summary']}" for h in result.hierarchy]
    lines += [f"note ({name}): {text}" for name, text in result.notes.items()]
    return lines
