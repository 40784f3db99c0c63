"""The evaluation figures on digits: sample quality and diversity of fast samplers with and without the
Gaussian late start (GLS).

8. late-start curves (the paper's Fig. 2 analogue): FD against the start step of a plain late start, the elbow
   and the theory's t_c (:func:`symbreak.experiments.paper.late_start.late_start_curves`);
9. the GLS table (Table 1 analogue) as a rendered table and a vanilla-vs-GLS chart, with sample grids of DDIM-5
   vanilla vs GLS at t_c (Fig. 3 analogue) (:func:`symbreak.experiments.paper.gls_table.gls_table`);
10. diversity (Fig. 4 analogue): class shares and their entropy
    (:func:`symbreak.experiments.paper.diversity.diversity`).

All three share one :func:`symbreak.experiments.paper.setup.prepare` setup (digits split 80/20, discrete DDPM
schedule of 1000 steps, the network and the feature classifier trained on the training part and cached on disk
in the context's cache folder by configuration). The sizes of a full and a quick run (resplits, bootstrap draws,
start points, sweep thinning, critical times, selection seeds) come from the context's
:class:`~symbreak.experiments.paper.settings.Settings`; the seed blocks of each figure are its own constants.
The paper's numbers appear only as labelled references (its FID on MNIST with Inception features, its CelebA64
shares), never mixed with ours: our quality number is a Fréchet distance on an in-domain classifier's features (FD).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from symbreak.experiments.recipes.common import FigureContext, FigureOutput, Recorder, recipe
from symbreak.experiments.recipes.network_figures import decoded_mosaic, single_threaded

if TYPE_CHECKING:
    from symbreak.experiments.paper.diversity import DiversityResult
    from symbreak.experiments.paper.gls_table import GLSTable
    from symbreak.experiments.paper.late_start import LateStartResult
    from symbreak.experiments.paper.setup import Setup

DATA = "digits"
GRID_SIDE, GRID_STEPS = 8, 5          # figure 9: 8 x 8 samples of DDIM-5
QUICK_FULL_STEP_STARTS = 2            # figure 8, quick: the methods with every step run from the first 2 starts
FULL_GLS_BLOCKS, QUICK_GLS_BLOCKS = 2, 1
FULL_DIVERSITY_BLOCKS, QUICK_DIVERSITY_BLOCKS = 5, 1
VANILLA_COLOUR, GLS_COLOUR = "#0072B2", "#E69F00"
PAPER_FID_LABEL = "paper's FID on MNIST, Inception features (reference, not comparable with our FD)"


# ---------------------------------------------------------------------------------------------
# the setup shared by the three figures
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def evaluation_setup(ctx: FigureContext) -> Setup:
    """:func:`~symbreak.experiments.paper.setup.prepare` on digits (quick: the evaluation's quick settings),
    network and classifier cached in ``ctx.cache_dir``."""
    from symbreak.experiments.paper.setup import prepare

    return prepare(DATA, quick=ctx.quick, device=ctx.device, cache_dir=ctx.cache_dir, seed=ctx.seed)


def seed_blocks(ctx: FigureContext, setup: Setup, blocks: int) -> list[int]:
    """``blocks`` seed blocks of the held-out size, from ctx.seed."""
    return list(range(ctx.seed, ctx.seed + blocks * setup.block_size))


def _quick_note(quick: bool) -> str:
    return (" Quick mode: a small network and classifier, seed blocks of 60 samples and fewer start times; the "
            "numbers are a preview, not results." if quick else "")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _letter_titles(axes_letters, **style) -> None:
    """Prefix each panel's own title with its letter, placed on the left (the centred title removed)."""
    for ax, letter in axes_letters:
        ax.set_title(f"({letter}) " + ax.get_title(), loc="left", **style)
        ax.set_title("")


# ---------------------------------------------------------------------------------------------
# figure 8
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LateStartFigureResult:
    """Figure 8's numbers: the late-start curves, floor, elbows and critical times of the seed block
    ``seed``.. ``seed + block_size - 1``, on a schedule of ``n_steps`` steps."""

    result: LateStartResult
    seed: int
    block_size: int
    n_steps: int
    paper_elbow: float
    quick: bool

    @property
    def primary(self) -> str:
        return self.result.config["elbow_metric"]

    def elbows(self) -> dict[str, float | None]:
        linear = self.result.elbows[self.result.elbows.scale == "linear"]
        return {e.method: (None if pd.isna(e.step) else float(e.step)) for e in linear.itertuples()}

    def critical(self) -> dict[str, dict]:
        return {k: {"t_c": v["t_c"], "step_c": v["step_c"], "kind": v["kind"]} for k, v in self.result.critical.items()}

    def summary(self) -> dict:
        floor = self.result.floor[self.primary]
        return {"metric": self.primary, "elbow_step_linear": self.elbows(), "critical": self.critical(),
                "floor": {"value": floor.value, "ci_low": floor.ci_low, "ci_high": floor.ci_high},
                "elbows": self.result.elbows.to_dict(orient="records"),
                "paper_elbow_step_mnist": {"value": self.paper_elbow,
                                           "label": "paper's Fig. 2 elbow on MNIST (reference)"}}


def late_start_starts(schedule, settings) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The start times of the few-step methods and of the methods with every step: with
    ``settings.late_start_points`` None the defaults of :func:`late_start_curves` (20 starts, every other one
    for every-step methods), else that many starts with every-step methods from the first
    :data:`QUICK_FULL_STEP_STARTS`."""
    from symbreak.experiments.paper.late_start import start_times

    if settings.late_start_points is None:
        return None, None
    starts = start_times(schedule, settings.late_start_points)
    return starts, starts[:QUICK_FULL_STEP_STARTS]


@single_threaded
def compute_late_start(ctx: FigureContext) -> LateStartFigureResult:
    from symbreak.experiments.paper.late_start import late_start_curves, paper_elbow_step

    setup, settings = evaluation_setup(ctx), ctx.settings
    starts, full = late_start_starts(setup.schedule, settings)
    result = late_start_curves(setup, seed_blocks(ctx, setup, 1), starts=starts, full_step_starts=full,
                               critical=settings.critical_kinds(), n_resplits=settings.n_resplits)
    return LateStartFigureResult(result, ctx.seed, setup.block_size, setup.schedule.n_steps,
                                 paper_elbow_step("MNIST"), ctx.quick)


def late_start_caption(r: LateStartFigureResult) -> str:
    listed = "; ".join(f"{m} {'none' if s is None else f'{s:.0f}'}" for m, s in r.elbows().items())
    tcs = "; ".join(f"{k} {v['step_c']} (t = {v['t_c']:.4f})" for k, v in r.critical().items())
    return (
        f"Late start on digits: each sampler starts from N(0, I) placed at the start step (the steps above it skipped) "
        f"and its {r.block_size} samples (seeds {r.seed}–{r.seed + r.block_size - 1}, the same at every "
        f"start) are scored by the Fréchet distance on an in-domain classifier's features (FD, log scale; dotted: the "
        f"held-out floor {r.result.floor[r.primary].value:.3g}). Elbow = maximum of the second derivative of the "
        f"smoothed FD curve (triangles, black dashed lines), by method: {listed}. Theory t_c (vermillion; dotted: "
        f"Gaussian approximation, dashed: exact score of the training part): step {tcs}. The paper reports its MNIST "
        f"elbow near step {r.paper_elbow} of 1000 (reference)." + _quick_note(r.quick))


def _record_late_start(rec: Recorder, ax, r: LateStartFigureResult) -> None:
    """The curve, floor, elbow and t_c numbers that :func:`plot_late_start` drew (elbow and t_c lines here)."""
    result, primary = r.result, r.primary
    curves = result.curves[result.curves.metric == primary]
    rec.table(ax, "curve", [{"method": c.method, "step": int(c.step), "t_start": c.t_start, "nfe": int(c.nfe),
                             "metric": primary, "value": c.value, "ci_low": c.ci_low, "ci_high": c.ci_high}
                            for c in curves.itertuples()])
    floor = result.floor[primary]
    rec.table(ax, "held-out floor", [{"metric": primary, "value": floor.value, "ci_low": floor.ci_low,
                                      "ci_high": floor.ci_high}])
    for e in result.elbows[result.elbows.scale == "linear"].itertuples():  # elbows: triangles by plot_late_start
        if not pd.isna(e.step):
            rec.mark(ax, float(e.step), "elbow", None, columns={"method": e.method, "scale": "linear"})
    for kind, info in result.critical.items():
        if info.get("step_c") is not None:
            rec.mark(ax, float(info["step_c"]), "t_c", None, approx=kind == "gaussian",
                     columns={"method": kind, "t": info["t_c"]})


@recipe(8, "late_start", "Late-start curves: FD against the start step, the elbow and t_c (Fig. 2)",
        compute=compute_late_start)
def draw_late_start(r: LateStartFigureResult) -> FigureOutput:
    from symbreak.experiments.paper.late_start import plot_late_start

    fig = _figure(7.4, 3.6)
    ax = fig.subplots(1, 1)
    rec = Recorder()
    rec.axes(ax, "a", "step", r.primary)
    plot_late_start(r.result, metrics=[r.primary], axes=[ax])
    _letter_titles([(ax, "a")])
    for extra in list(fig.legends):  # the figure-level legend of plot_late_start (the panel keeps its own)
        extra.remove()
    ax.legend(loc="upper right", fontsize=6.5, ncol=2, frameon=True, framealpha=0.9, edgecolor="none")
    _record_late_start(rec, ax, r)
    ax.set_xlim(0, r.n_steps)
    return FigureOutput(fig, rec.frame(), r.summary(), late_start_caption(r), r.result.config)


# ---------------------------------------------------------------------------------------------
# figure 9
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GLSFigureResult:
    """Figure 9's numbers: the GLS table on ``seeds``, its summary frame ``s``, the sample grids of
    DDIM-:data:`GRID_STEPS` (vanilla and GLS at t_c) on ``grid_seeds``, and the paper's MNIST rows."""

    table: GLSTable
    s: pd.DataFrame
    seeds: list[int]
    block_size: int
    grid_seeds: list[int]
    grids: dict
    shape: tuple[int, int]
    paper_mnist: list[dict]
    quick: bool

    def fd(self) -> dict[str, list[tuple[int, float, float]]]:
        """(n, vanilla, gls-tc) per sampler, by n."""
        out = {}
        for sampler in ("DDPM", "DDIM", "PNDM"):
            part = self.s[self.s.sampler == sampler].sort_values("n")
            out[sampler] = [(int(n), float(v), float(g)) for n, v, g in zip(part.n, part.vanilla, part["gls-tc"])]
        return out

    def summary(self) -> dict:
        table, seeds = self.table, self.grid_seeds
        return {"metric": table.primary, "critical": table.critical,
                "floor": {k: {"value": v.value, "ci_low": v.ci_low, "ci_high": v.ci_high}
                          for k, v in table.floor.items()},
                "summary": self.s.to_dict(orient="records"), "markdown": table.to_markdown(),
                "grid": {k: {"step_start": v.config["step_start"], "nfe": v.nfe, "seeds": f"{seeds[0]}-{seeds[-1]}"}
                         for k, v in self.grids.items()},
                "paper_reference": {"label": PAPER_FID_LABEL, "rows": self.paper_mnist}}

    def config(self) -> dict:
        seeds = self.grid_seeds
        return {**self.table.config, "grid": {"method": "ddim", "n_steps": GRID_STEPS,
                                              "seeds": f"{seeds[0]}-{seeds[-1]}",
                                              "starts": {k: v.config for k, v in self.grids.items()}}}


@single_threaded
def compute_gls_table(ctx: FigureContext) -> GLSFigureResult:
    from symbreak.experiments.paper.gls_table import default_sweep, gls_table, paper_table1
    from symbreak.experiments.sampling.draw import Method, draw_samples

    setup, settings = evaluation_setup(ctx), ctx.settings
    seeds = seed_blocks(ctx, setup, ctx.choose(FULL_GLS_BLOCKS, QUICK_GLS_BLOCKS))
    sweep = default_sweep(setup.schedule)[::settings.sweep_every]
    table = gls_table(setup, seeds, settings.selection_seeds(setup.block_size), sweep=sweep,
                      n_resplits=settings.n_resplits)
    method = Method(f"DDIM-{GRID_STEPS}", "ddim", GRID_STEPS)
    grid_seeds = list(range(ctx.seed, ctx.seed + GRID_SIDE**2))
    grids = {"vanilla": draw_samples(setup.denoiser, method, grid_seeds),
             "gls-tc": draw_samples(setup.denoiser, method, grid_seeds, start="gls", t_start=table.critical["t_c"],
                                    gls=setup.gls)}
    paper = paper_table1()
    return GLSFigureResult(table, table.summary(), seeds, setup.block_size, grid_seeds, grids, setup.dataset.shape,
                           paper[paper.dataset == "MNIST"].to_dict(orient="records"), ctx.quick)


def gls_caption(r: GLSFigureResult) -> str:
    parts = "; ".join(f"{name}: " + ", ".join(f"n = {n} {v:.3g} → {g:.3g}" for n, v, g in rows)
                      for name, rows in r.fd().items())
    paper_parts = "; ".join(f"n = {p['n']}: " + ", ".join(f"{k.split()[0]} {p[k]}" for k in p if "->" in k)
                            for p in r.paper_mnist)
    c, table = r.table.critical, r.table
    return (
        f"Vanilla fast samplers against the Gaussian late start on digits (Table 1 and Fig. 3 analogues). Vanilla: "
        f"N(0, I) at the uniform-skip start (step 666/800/900 for n = 3/5/10); gls-tc: the Gaussian N(alpha·mu, "
        f"alpha²·Sigma + sigma²·I) of the training data at the Gaussian-approximation t_c (step {c['step_c']}); "
        f"gls-best: the best start of a sweep chosen on separate seeds. FD on the classifier's features, mean over "
        f"{len(r.seeds) // r.block_size} block(s) of {r.block_size} samples (held-out floor "
        f"{table.floor[table.primary].value:.3g}). FD vanilla → gls-tc: {parts}. (a) the table, (b) FD per sampler "
        f"and n, (c, d) the same {GRID_SIDE**2} seeds of DDIM-{GRID_STEPS} from the vanilla start and from GLS at t_c. "
        f"For reference only, the {PAPER_FID_LABEL}, vanilla → gls: {paper_parts}." + _quick_note(r.quick))


def _table_panel(rec: Recorder, ax, s: pd.DataFrame, table: GLSTable) -> None:
    """(a) The FD table: sampler, n, NFE, vanilla, gls-tc, gls-best (with step), gain vanilla / gls-tc."""
    rec.axes(ax, "a", "column", "row", f"{table.primary.upper()} (lower is better)")
    ax.axis("off")
    rows = [{"sampler": r["sampler"], "n": int(r["n"]), "nfe": int(r["nfe"]), "vanilla": r["vanilla"],
             "gls_tc": r["gls-tc"], "gls_best": r["gls-best"], "step_tc": int(r["step_tc"]),
             "step_best": int(r["step_best"]), "gain_tc": r["gain_tc"]} for r in s.to_dict(orient="records")]
    rec.table(ax, "gls table", rows)
    cells = [[r["sampler"], r["n"], f"{r['vanilla']:.3g}", f"{r['gls_tc']:.3g}",
              f"{r['gls_best']:.3g} ({r['step_best']})", f"{r['gain_tc']:.2f}×"] for r in rows]
    t = ax.table(cellText=cells, colLabels=["sampler", "n", "vanilla", "GLS $t_c$", "GLS best\n(step)",
                                            "vanilla /\nGLS $t_c$"], loc="center", cellLoc="center",
                 bbox=[0.0, 0.0, 1.0, 0.95])
    t.auto_set_font_size(False)
    t.set_fontsize(7)
    for (row, _), cell in t.get_celld().items():
        if row == 0:
            cell.set_height(1.8 * cell.get_height())


def _gain_panel(rec: Recorder, ax, s: pd.DataFrame, table: GLSTable) -> None:
    """(b) FD vanilla and GLS at t_c per sampler (groups) and n, with the held-out floor."""
    rec.axes(ax, "b", "sampler, n", table.primary, "vanilla vs GLS at $t_c$")
    x = np.arange(len(s), dtype=float)
    for start, colour, marker, offset in (("vanilla", VANILLA_COLOUR, "o", -0.12), ("gls-tc", GLS_COLOUR, "s", 0.12)):
        err = np.vstack([s[start] - s[f"{start}_ci_low"], s[f"{start}_ci_high"] - s[start]])
        rec.points(ax, start, x + offset, s[start], columns={"sampler": s.sampler.to_numpy(),
                                                            "n": s.n.to_numpy().astype(np.int64)},
                   color=colour, marker=marker, s=18, zorder=3, edgecolors="black", linewidths=0.4)
        if np.isfinite(err).all():
            ax.errorbar(x + offset, s[start], yerr=err, fmt="none", ecolor=colour, elinewidth=0.8)
    floor = table.floor[table.primary].value
    ax.axhline(floor, color="black", linestyle=":", linewidth=1.0, label=f"held-out floor {floor:.3g}")
    ax.set_yscale("log")
    ax.set_xticks(x, [f"{a}\n{int(n)}" for a, n in zip(s.sampler, s.n)], fontsize=6.5)
    ax.set_ylabel(f"{table.primary.upper()} (classifier features)")
    ax.set_xlabel("sampler, steps n")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3, fontsize=6.5)


def _grid_panel(rec: Recorder, ax, letter: str, start: str, samples, shape: tuple[int, int]) -> None:
    """(c, d) a GRID_SIDE x GRID_SIDE mosaic of samples from one start."""
    images = samples.x.reshape(GRID_SIDE, GRID_SIDE, -1)
    title = (f"DDIM-{GRID_STEPS} vanilla (from step {samples.config['step_start']})" if start == "vanilla" else
             f"DDIM-{GRID_STEPS}, GLS at $t_c$ (step {samples.config['step_start']})")
    rec.axes(ax, letter, "pixel column", "pixel row", title)
    rec.image(ax, f"{start} samples", decoded_mosaic(images, shape), cmap="gray_r", vmin=-1, vmax=1)
    ax.grid(False)
    ax.set_xticks([])
    ax.set_yticks([])


@recipe(9, "gls_table", "The GLS table (Table 1) and DDIM-5 samples vanilla vs GLS (Fig. 3)", compute=compute_gls_table)
def draw_gls_table(r: GLSFigureResult) -> FigureOutput:
    fig = _figure(7.4, 7.6)
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.0, 1.05])
    ax_t, ax_b = top.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1.0]})
    ax_v, ax_g = bottom.subplots(1, 2)
    rec = Recorder()
    _table_panel(rec, ax_t, r.s, r.table)
    _gain_panel(rec, ax_b, r.s, r.table)
    for ax, letter, (start, samples) in zip((ax_v, ax_g), "cd", r.grids.items()):
        _grid_panel(rec, ax, letter, start, samples, r.shape)
    return FigureOutput(fig, rec.frame(), r.summary(), gls_caption(r), r.config())


# ---------------------------------------------------------------------------------------------
# figure 10
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DiversityFigureResult:
    """Figure 10's numbers: class shares and entropies of every set over ``seeds`` and the paper's
    Fig. 4 numbers (``paper``, labelled ``paper_label``)."""

    result: DiversityResult
    seeds: list[int]
    paper: pd.DataFrame
    paper_label: str
    quick: bool

    def entropy(self) -> dict[str, dict]:
        return {r["set"]: {"entropy": r["entropy"], "ci": [r["entropy_ci_low"], r["entropy_ci_high"]],
                           "kl_to_train": r["kl_to_train"]} for r in self.result.shares.to_dict(orient="records")}

    def summary(self) -> dict:
        return {"entropy_bits": self.entropy(), "critical": self.result.critical, "n_samples": len(self.seeds),
                "paper_reference": {"label": self.paper_label, "rows": self.paper.to_dict(orient="records")}}


@single_threaded
def compute_diversity(ctx: FigureContext) -> DiversityFigureResult:
    from symbreak.experiments.paper.diversity import PAPER_LABEL, diversity, paper_diversity

    setup = evaluation_setup(ctx)
    seeds = seed_blocks(ctx, setup, ctx.choose(FULL_DIVERSITY_BLOCKS, QUICK_DIVERSITY_BLOCKS))
    result = diversity(setup, seeds, n_boot=ctx.settings.n_boot)
    return DiversityFigureResult(result, seeds, paper_diversity(), PAPER_LABEL, ctx.quick)


def diversity_caption(r: DiversityFigureResult) -> str:
    seeds, paper = r.seeds, r.paper.to_dict(orient="records")
    listed = "; ".join(f"{name} {v['entropy']:.3f} [{v['ci'][0]:.3f}, {v['ci'][1]:.3f}]"
                       for name, v in r.entropy().items())
    return (
        f"Diversity on digits (Fig. 4 analogue): class shares by the frozen classifier of the training and held-out "
        f"parts and of {len(seeds)} samples each (seeds {seeds[0]}–{seeds[-1]}) of DDPM with all 1000 steps, "
        f"DDIM-n from the vanilla start and gls-DDIM-n (Gaussian late start at t_c, step "
        f"{r.result.critical['step_c']}), n = 3, 5, 10. (a) shares, (b) entropy of the shares in bits against n (95 % "
        f"bias-corrected bootstrap intervals): {listed} (the maximum is log2 10 = 3.322). (c) For reference only, "
        f"the {r.paper_label}: " + "; ".join(f"{p['set']} {p['entropy_bits']:.3f}" for p in paper)
        + " bits." + _quick_note(r.quick))


def _record_diversity(rec: Recorder, ax_s, ax_e, ax_p, r: DiversityFigureResult) -> None:
    """The shares, entropies and the paper's numbers that :func:`plot_diversity` drew."""
    k, shares = r.result.num_classes, r.result.shares.to_dict(orient="records")
    rec.table(ax_s, "class shares", [{"set": s["set"], "class": c, "share": s[f"share_{c}"]}
                                      for s in shares for c in range(k)])
    rec.table(ax_e, "entropy", [{"set": s["set"], "kind": s["kind"], "n": s["n"], "nfe": s["nfe"],
                                 "entropy": s["entropy"], "entropy_ci_low": s["entropy_ci_low"],
                                 "entropy_ci_high": s["entropy_ci_high"], "kl_to_train": s["kl_to_train"]}
                                for s in shares])
    rec.table(ax_p, "paper reference", [{"set": p["set"], "source": r.paper_label, "entropy": p["entropy_bits"]}
                                        for p in r.paper.to_dict(orient="records")])


@recipe(10, "diversity", "Diversity: class shares and entropy of DDIM-n vs gls-DDIM-n (Fig. 4)",
        compute=compute_diversity)
def draw_diversity(r: DiversityFigureResult) -> FigureOutput:
    from symbreak.experiments.paper.diversity import plot_diversity

    fig = _figure(7.4, 7.2)
    gs = fig.add_gridspec(2, 2, height_ratios=[1.0, 0.6], width_ratios=[1.2, 1.0])
    ax_s, ax_e, ax_p = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1]), fig.add_subplot(gs[1, :])
    rec = Recorder()
    rec.axes(ax_s, "a", "share", "set")
    rec.axes(ax_e, "b", "n", "entropy")
    rec.axes(ax_p, "c", "share", "set")
    with warnings.catch_warnings():  # plot_diversity calls tight_layout; the constrained engine is restored below
        warnings.simplefilter("ignore", UserWarning)
        plot_diversity(r.result, axes=[ax_s, ax_e, ax_p])
    fig.set_layout_engine("constrained")
    _letter_titles([(ax_s, "a"), (ax_e, "b"), (ax_p, "c")], fontsize=8)
    _record_diversity(rec, ax_s, ax_e, ax_p, r)
    return FigureOutput(fig, rec.frame(), r.summary(), diversity_caption(r), r.result.config)
