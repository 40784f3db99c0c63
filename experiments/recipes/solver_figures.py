"""Figure 12: the Gaussian late start and Gaussian teleportation for today's fast solvers.

The GLS table (:func:`symbreak.experiments.paper.gls_table.gls_table`) extended to DPM-Solver++ 2M / 3M
(Lu et al. 2022) and UniPC (Zhao et al. 2023) beside the paper's DDPM (eta = 1), DDIM and PNDM, at
n = 3, 5, 10 steps, with five starts on the same seeds: vanilla (N(0, I) at the uniform-skip start), trailing
(N(0, I) at T on diffusers' trailing timesteps, the grid today's solvers are run on), GLS at
the Gaussian-approximation t_c, teleportation at t_c (the noise start carried to t_c by the Gaussian's
probability-flow ODE) and GLS at the best start of a sweep (chosen on separate seeds). On digits (the
trained network, FD on the feature classifier) and on gmm-2d (the exact denoiser, exact W2). Gains are
paired bootstrap intervals over the common seed blocks; the paper's Table 1 FIDs on MNIST appear only as
labelled references (another metric and data set).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from symbreak.experiments.paper.gls_table import ALL_STARTS, GLSTable
from symbreak.experiments.recipes.common import FigureContext, FigureOutput, Recorder, recipe
from symbreak.experiments.recipes.network_figures import single_threaded

SOLVERS: dict[str, tuple[str, dict]] = {"DDPM": ("ddim", {"eta": 1.0}), "DDIM": ("ddim", {}), "PNDM": ("pndm", {}),
                                        "DPM++2M": ("dpm2m", {}), "DPM++3M": ("dpm3m", {}), "UniPC": ("unipc", {})}
STEPS = (3, 5, 10)
DATA = {"digits": "network", "gmm-2d": "exact"}
FULL_SWEEP_EVERY = 2  # every 2nd start of the 18-point sweep in a full run (9 starts; the quick run: every 5th)
START_STYLE = {"vanilla": ("#0072B2", "o"), "gls-tc": ("#E69F00", "s"), "teleport-tc": ("#009E73", "^"),
               "gls-best": ("#CC79A7", "D"), "trailing": ("#56B4E9", "P")}
PAPER_LABEL = "paper's FID on MNIST (Inception features; reference, not comparable with our FD)"


@lru_cache(maxsize=None)
def _setup(ctx: FigureContext, data: str):
    from symbreak.experiments.paper.setup import prepare

    return prepare(data, denoiser=DATA[data], quick=ctx.quick, device=ctx.device, cache_dir=ctx.cache_dir,
                   seed=ctx.seed)


@dataclass
class SolverTableResult:
    """The extended GLS table of each data set and the paper's MNIST rows."""

    tables: dict[str, GLSTable]
    paper_mnist: list[dict]
    sweep_every: int
    quick: bool

    def frame(self, data: str) -> pd.DataFrame:
        """summary() of a data set's table joined with the paired gains of its primary metric over vanilla
        (``ratio_<start>``) and over the trailing-spacing start (``trailing_ratio_<start>``)."""
        table, frame = self.tables[data], self.tables[data].summary()
        for reference, prefix in (("vanilla", ""), ("trailing", "trailing_")):
            paired = table.paired(reference=reference).pivot(index=["sampler", "n"], columns="start",
                                                             values=["ratio", "ratio_low", "ratio_high"])
            paired.columns = [f"{prefix}{v}_{s}" for v, s in paired.columns]
            frame = frame.merge(paired.reset_index(), on=["sampler", "n"], sort=False)
        return frame

    def summary(self) -> dict:
        out = {}
        for data, table in self.tables.items():
            out[data] = {"metric": table.primary, "critical": table.critical,
                         "floor": {"value": table.floor[table.primary].value,
                                   "ci_low": table.floor[table.primary].ci_low,
                                   "ci_high": table.floor[table.primary].ci_high},
                         "n_blocks": int(table.rows.n_blocks.max()),
                         "rows": self.frame(data).to_dict(orient="records"),
                         "paired": table.paired().to_dict(orient="records")}
        out["paper_reference"] = {"label": PAPER_LABEL, "rows": self.paper_mnist}
        return out

    def config(self) -> dict:
        return {"figure": "solver-table", "sweep_every": self.sweep_every,
                "tables": {k: v.config for k, v in self.tables.items()}}


@single_threaded
def compute_solver_table(ctx: FigureContext) -> SolverTableResult:
    from symbreak.experiments.paper.gls_table import default_sweep, gls_table, paper_table1

    settings = ctx.settings
    every = ctx.choose(FULL_SWEEP_EVERY, settings.sweep_every)
    tables = {}
    for data in DATA:
        setup = _setup(ctx, data)
        seeds = list(range(ctx.seed, ctx.seed + settings.gls_blocks * setup.block_size))
        tables[data] = gls_table(setup, seeds, settings.selection_seeds(setup.block_size), samplers=SOLVERS,
                                 steps=STEPS, sweep=default_sweep(setup.schedule)[::every],
                                 n_resplits=settings.n_resplits, starts=ALL_STARTS)
    paper = paper_table1()
    return SolverTableResult(tables, paper[paper.dataset == "MNIST"].to_dict(orient="records"), every, ctx.quick)


def _positions(s: pd.DataFrame) -> np.ndarray:
    return np.arange(len(s), dtype=float)


def _ticks(ax, s: pd.DataFrame) -> None:
    ax.set_xticks(_positions(s), [f"{a}-{int(n)}" for a, n in zip(s.sampler, s.n)], fontsize=5.5, rotation=90)


def _metric_panel(rec: Recorder, ax, letter: str, data: str, r: SolverTableResult) -> None:
    """FD (digits) or W2 (gmm-2d) of every start per (sampler, n), with the held-out floor."""
    table, s = r.tables[data], r.frame(data)
    rec.axes(ax, letter, "sampler, n", table.primary, f"{data}: {table.primary.upper()} by start")
    x = _positions(s)
    for k, start in enumerate(ALL_STARTS):
        colour, marker = START_STYLE[start]
        err = np.vstack([s[start] - s[f"{start}_ci_low"], s[f"{start}_ci_high"] - s[start]])
        rec.points(ax, start, x + 0.14 * (k - 2), s[start], columns={"data": data, "sampler": s.sampler.to_numpy(),
                   "n": s.n.to_numpy().astype(np.int64), "ci_low": s[f"{start}_ci_low"].to_numpy(),
                   "ci_high": s[f"{start}_ci_high"].to_numpy()},
                   color=colour, marker=marker, s=12, zorder=3, edgecolors="black", linewidths=0.3)
        ax.errorbar(x + 0.14 * (k - 2), s[start], yerr=np.clip(err, 0, None), fmt="none", ecolor=colour,
                    elinewidth=0.7)
    floor = table.floor[table.primary]
    rec.mark(ax, floor.value, "event", f"held-out floor {floor.value:.3g}", axis="y", approx=True,
             columns={"data": data})
    ax.set_yscale("log")
    _ticks(ax, s)
    ax.legend(fontsize=5.5, ncol=2, loc="upper left")


def _gain_panel(rec: Recorder, ax, letter: str, data: str, r: SolverTableResult) -> None:
    """vanilla / start with its paired bootstrap interval (> 1: the start helps)."""
    table, s = r.tables[data], r.frame(data)
    rec.axes(ax, letter, "sampler, n", "vanilla / start", f"{data}: paired gain over vanilla")
    x = _positions(s)
    for k, start in enumerate(ALL_STARTS[1:]):
        colour, marker = START_STYLE[start]
        v, lo, hi = s[f"ratio_{start}"], s[f"ratio_low_{start}"], s[f"ratio_high_{start}"]
        rec.points(ax, start, x + 0.16 * (k - 1.5), v, columns={"data": data, "sampler": s.sampler.to_numpy(),
                   "n": s.n.to_numpy().astype(np.int64), "ci_low": lo.to_numpy(), "ci_high": hi.to_numpy(),
                   "metric": table.primary}, color=colour, marker=marker, s=12, zorder=3, edgecolors="black",
                   linewidths=0.3)
        ax.errorbar(x + 0.16 * (k - 1.5), v, yerr=np.clip(np.vstack([v - lo, hi - v]), 0, None), fmt="none",
                    ecolor=colour, elinewidth=0.7)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    _ticks(ax, s)


def _start_panel(rec: Recorder, ax, letter: str, r: SolverTableResult) -> None:
    """The best swept start step per solver and n against the theory's t_c step (both data sets, 1000-step
    ddpm schedule)."""
    rec.axes(ax, letter, "sampler, n", "start step", "theory t_c vs the best swept start")
    for data, marker, offset in (("digits", "D", -0.12), ("gmm-2d", "v", 0.12)):
        table, s = r.tables[data], r.frame(data)
        rec.points(ax, f"best swept start, {data}", _positions(s) + offset, s.step_best.astype(float),
                   columns={"data": data, "sampler": s.sampler.to_numpy(), "n": s.n.to_numpy().astype(np.int64),
                            "tc_over_best": s.tc_over_best.to_numpy()}, color=START_STYLE["gls-best"][0],
                   marker=marker, s=14, zorder=3, edgecolors="black", linewidths=0.3)
        rec.mark(ax, float(table.critical["step_c"]), "t_c", f"Gaussian t_c, {data} (step {table.critical['step_c']})",
                 axis="y", approx=True, columns={"data": data})
    s = r.frame("digits")
    _ticks(ax, s)
    ax.set_ylim(0, 1000)
    ax.legend(fontsize=5.5, loc="upper right")


def _table_panel(rec: Recorder, ax, letter: str, r: SolverTableResult) -> None:
    """Digits FD at n = 3 and 5 (ours) beside the paper's MNIST FID, vanilla -> gls, where it exists."""
    rec.axes(ax, letter, "column", "row", "digits FD at n = 3, 5, gains, and the paper's MNIST FID (reference)")
    ax.axis("off")
    s, paper = r.frame("digits"), {int(p["n"]): p for p in r.paper_mnist}
    rows, cells = [], []
    for row in s[s.n.isin([3, 5])].to_dict(orient="records"):
        ref = paper.get(int(row["n"]), {}).get(f"{row['sampler']} vanilla -> gls", "—")
        gain, tele = (_gain_text(row, start) for start in ("gls-tc", "teleport-tc"))
        over_trailing = _gain_text(row, "gls-tc", prefix="trailing_")
        rows.append({"sampler": row["sampler"], "n": int(row["n"]), "paper_mnist_fid": ref, "gain_tc": gain,
                     "gain_teleport": tele, "gain_tc_over_trailing": over_trailing})
        cells.append([row["sampler"], int(row["n"]), f"{row['vanilla']:.3g}", f"{row['trailing']:.3g}",
                      f"{row['gls-tc']:.3g}", f"{row['teleport-tc']:.3g}",
                      f"{row['gls-best']:.3g} ({int(row['step_best'])})", gain, tele, over_trailing, ref])
    rec.table(ax, "solver table", rows)
    t = ax.table(cellText=cells, colLabels=["sampler", "n", "vanilla", "trailing", "GLS $t_c$", "teleport $t_c$",
                                            "GLS best\n(step)", "vanilla /\nGLS $t_c$", "vanilla /\nteleport",
                                            "trailing /\nGLS $t_c$", "paper MNIST FID\nvanilla -> gls"],
                 loc="center", cellLoc="center", bbox=[0.0, 0.0, 1.0, 1.0],
                 colWidths=[0.08, 0.03, 0.06, 0.06, 0.06, 0.07, 0.08, 0.13, 0.13, 0.13, 0.14])
    t.auto_set_font_size(False)
    t.set_fontsize(6)


def _gain_text(row: dict, start: str, sep: str = "\n", prefix: str = "") -> str:
    return (f"{row[f'{prefix}ratio_{start}']:.2f}×{sep}[{row[f'{prefix}ratio_low_{start}']:.2f}, "
            f"{row[f'{prefix}ratio_high_{start}']:.2f}]")


def solver_caption(r: SolverTableResult) -> str:
    d = r.frame("digits")
    new = d[d.sampler.isin(["DPM++2M", "DPM++3M", "UniPC"]) & d.n.isin([3, 5])].to_dict(orient="records")
    parts = "; ".join(f"{row['sampler']}-{int(row['n'])} GLS {_gain_text(row, 'gls-tc', ' ')} (over trailing "
                      f"{_gain_text(row, 'gls-tc', ' ', 'trailing_')}), teleport {_gain_text(row, 'teleport-tc', ' ')}"
                      for row in new)
    c, blocks = r.tables["digits"].critical, int(r.tables["digits"].rows.n_blocks.max())
    note = (" Quick mode: a small network and classifier, 2 blocks of 60 samples and a 4-point sweep; a "
            "preview, and 2-block bootstrap intervals are too narrow." if r.quick else "")
    return (f"Fast solvers with and without a Gaussian start, on digits (network; FD on the classifier's features) "
            f"and gmm-2d (exact denoiser; W2). Starts on the same seeds: vanilla (N(0, I) at the uniform-skip start), "
            f"trailing (N(0, I) at T on diffusers' trailing timesteps, today's usual grid), "
            f"GLS at the Gaussian t_c (digits step {c['step_c']}), teleportation at t_c (the noise start carried by "
            f"the Gaussian's probability-flow ODE) and GLS at the best start of a sweep of every {r.sweep_every}th "
            f"late-start point (chosen on separate seeds). Mean and 95 % bootstrap interval over {blocks} seed blocks; "
            f"(a, b) the metric, (c, d) the paired gain vanilla / start (> 1 helps), (e) the best swept start "
            f"(diamonds digits, triangles gmm-2d) against each data set's Gaussian t_c (dotted), (f) digits at "
            f"n = 3, 5 beside the {PAPER_LABEL}. Digits gains vanilla / start for the new solvers: {parts}." + note)


@recipe(12, "solver_table", "GLS and Gaussian teleportation for DPM-Solver++ and UniPC (Table 1 extended)",
        compute=compute_solver_table)
def draw_solver_table(r: SolverTableResult) -> FigureOutput:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.4, 12.6), layout="constrained")
    axes = fig.subplot_mosaic([["a", "b"], ["c", "d"], ["e", "e"], ["f", "f"]],
                              gridspec_kw={"height_ratios": [1.0, 1.0, 0.75, 1.6]})
    rec = Recorder()
    _metric_panel(rec, axes["a"], "a", "digits", r)
    _metric_panel(rec, axes["b"], "b", "gmm-2d", r)
    _gain_panel(rec, axes["c"], "c", "digits", r)
    _gain_panel(rec, axes["d"], "d", "gmm-2d", r)
    _start_panel(rec, axes["e"], "e", r)
    _table_panel(rec, axes["f"], "f", r)
    return FigureOutput(fig, rec.frame(), r.summary(), solver_caption(r), r.config())
