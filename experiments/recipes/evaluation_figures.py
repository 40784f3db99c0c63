"""The evaluation figures on digits: sample quality and diversity of fast samplers with and without the
Gaussian late start (GLS).

8. late-start curves (the paper's Fig. 2 analogue): FD against the start step of a plain late start, the elbow
   and the theory's t_c (:func:`symbreak.experiments.paper.late_start.late_start_curves`);
9. the GLS table (Table 1 analogue) as a rendered table and a vanilla-vs-GLS chart, with sample grids of DDIM-5
   vanilla vs GLS at t_c (Fig. 3 analogue) (:func:`symbreak.experiments.paper.gls_table.gls_table`);
10. diversity (Fig. 4 analogue): class shares and their entropy (:func:`symbreak.experiments.paper.diversity.diversity`).

All three share one :func:`symbreak.experiments.evaluation.prepare` setup (digits split 80/20, discrete DDPM
schedule of 1000 steps, the network and the feature classifier trained on the training part and cached on disk
in the context's cache folder by configuration; quick mode: the evaluation's quick settings). The paper's
numbers appear only as labelled references (its FID on MNIST with Inception features, its CelebA64 shares),
never mixed with ours: our quality number is a Fréchet distance on an in-domain classifier's features (FD).
"""
from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import pandas as pd

from symbreak.experiments.recipes.common import FigureContext, FigureOutput, Recorder, recipe
from symbreak.experiments.recipes.network_figures import decoded_mosaic, single_threaded

DATA = "digits"
GRID_SIDE, GRID_STEPS = 8, 5          # figure 9: 8 x 8 samples of DDIM-5
QUICK_POINTS, FULL_POINTS = 5, 20     # figure 8: start times
FULL_GLS_BLOCKS, QUICK_GLS_BLOCKS = 2, 1
FULL_DIVERSITY_BLOCKS, QUICK_DIVERSITY_BLOCKS = 5, 1
VANILLA_COLOUR, GLS_COLOUR = "#0072B2", "#E69F00"
PAPER_FID_LABEL = "paper's FID on MNIST, Inception features (reference, not comparable with our FD)"


# ---------------------------------------------------------------------------------------------
# the setup shared by the three figures
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def evaluation_setup(ctx: FigureContext):
    """:func:`~symbreak.experiments.evaluation.prepare` on digits (quick: the evaluation's quick settings),
    network and classifier cached in ``ctx.cache_dir``."""
    from symbreak.experiments.paper.setup import prepare

    return prepare(DATA, quick=ctx.quick, device=ctx.device, cache_dir=ctx.cache_dir, seed=ctx.seed)


def seed_blocks(ctx: FigureContext, setup, blocks: int) -> list[int]:
    """``blocks`` seed blocks of the held-out size, from ctx.seed."""
    return list(range(ctx.seed, ctx.seed + blocks * setup.block_size))


def _quick_note(ctx: FigureContext) -> str:
    return (" Quick mode: a small network and classifier, seed blocks of 60 samples and fewer start times; the "
            "numbers are a preview, not results." if ctx.quick else "")


def _fmt(v) -> str:
    return "n/a" if v is None or pd.isna(v) else f"{v:.3g}"


# ---------------------------------------------------------------------------------------------
# figure 8
# ---------------------------------------------------------------------------------------------
@recipe(8, "late_start", "Late-start curves: FD against the start step, the elbow and t_c (Fig. 2)")
@single_threaded
def figure_late_start(ctx: FigureContext) -> FigureOutput:
    from symbreak.experiments.paper.late_start import late_start_curves, paper_elbow_step, plot_late_start, start_times

    setup = evaluation_setup(ctx)
    points = ctx.choose(FULL_POINTS, QUICK_POINTS)
    starts = start_times(setup.schedule, points)
    full = ctx.choose(start_times(setup.schedule, points, every=2), starts[:2])
    result = late_start_curves(setup, seed_blocks(ctx, setup, 1), starts=starts, full_step_starts=full,
                               critical=ctx.choose(("gaussian", "exact"), ("gaussian",)),
                               n_resplits=ctx.choose(20, 3))
    primary = result.config["elbow_metric"]

    fig = _figure(7.4, 3.6)
    ax = fig.subplots(1, 1)
    rec = Recorder()
    rec.axes(ax, "a", "step", primary)
    plot_late_start(result, metrics=[primary], axes=[ax])
    ax.set_title("(a) " + ax.get_title(), loc="left")
    ax.set_title("")
    _drop_figure_legends(fig)
    ax.legend(loc="upper right", fontsize=6.5, ncol=2, frameon=True, framealpha=0.9, edgecolor="none")
    curves = result.curves[result.curves.metric == primary]
    rec.table(ax, "curve", [{"method": r.method, "step": int(r.step), "t_start": r.t_start, "nfe": int(r.nfe),
                             "metric": primary, "value": r.value, "ci_low": r.ci_low, "ci_high": r.ci_high}
                            for r in curves.itertuples()])
    floor = result.floor[primary]
    rec.table(ax, "held-out floor", [{"metric": primary, "value": floor.value, "ci_low": floor.ci_low,
                                      "ci_high": floor.ci_high}])
    linear = result.elbows[result.elbows.scale == "linear"]
    for e in linear.itertuples():  # elbows: triangles drawn by plot_late_start; the line drawn here
        if not pd.isna(e.step):
            rec.mark(ax, float(e.step), "elbow", None, columns={"method": e.method, "scale": "linear"})
    for kind, info in result.critical.items():
        if info.get("step_c") is not None:
            rec.mark(ax, float(info["step_c"]), "t_c", None, approx=kind == "gaussian",
                     columns={"method": kind, "t": info["t_c"]})
    ax.set_xlim(0, setup.schedule.n_steps)

    elbows = {e.method: (None if pd.isna(e.step) else float(e.step)) for e in linear.itertuples()}
    crit = {k: {"t_c": v["t_c"], "step_c": v["step_c"], "kind": v["kind"]} for k, v in result.critical.items()}
    paper_elbow = paper_elbow_step("MNIST")
    summary = {"metric": primary, "elbow_step_linear": elbows, "critical": crit,
               "floor": {"value": floor.value, "ci_low": floor.ci_low, "ci_high": floor.ci_high},
               "elbows": result.elbows.to_dict(orient="records"),
               "paper_elbow_step_mnist": {"value": paper_elbow, "label": "paper's Fig. 2 elbow on MNIST (reference)"}}
    listed = "; ".join(f"{m} {'none' if s is None else f'{s:.0f}'}" for m, s in elbows.items())
    tcs = "; ".join(f"{k} {v['step_c']} (t = {v['t_c']:.4f})" for k, v in crit.items())
    caption = (
        f"Late start on digits: each sampler starts from N(0, I) placed at the start step (the steps above it skipped) "
        f"and its {setup.block_size} samples (seeds {ctx.seed}–{ctx.seed + setup.block_size - 1}, the same at every "
        f"start) are scored by the Fréchet distance on an in-domain classifier's features (FD, log scale; dotted: the "
        f"held-out floor {floor.value:.3g}). Elbow = maximum of the second derivative of the smoothed FD curve "
        f"(triangles, black dashed lines), by method: {listed}. Theory t_c (vermillion; dotted: Gaussian "
        f"approximation, dashed: exact score of the training part): step {tcs}. The paper reports its MNIST elbow "
        f"near step {paper_elbow} of 1000 (reference)." + _quick_note(ctx))
    return FigureOutput(fig, rec.frame(), summary, caption, result.config)


# ---------------------------------------------------------------------------------------------
# figure 9
# ---------------------------------------------------------------------------------------------
@recipe(9, "gls_table", "The GLS table (Table 1) and DDIM-5 samples vanilla vs GLS (Fig. 3)")
@single_threaded
def figure_gls_table(ctx: FigureContext) -> FigureOutput:
    from symbreak.experiments.paper.gls_table import default_sweep, gls_table, paper_table1
    from symbreak.experiments.sampling.draw import Method, draw_samples

    setup = evaluation_setup(ctx)
    seeds = seed_blocks(ctx, setup, ctx.choose(FULL_GLS_BLOCKS, QUICK_GLS_BLOCKS))
    selection = list(range(1_000_000, 1_000_000 + setup.block_size))
    sweep = default_sweep(setup.schedule)
    table = gls_table(setup, seeds, selection, sweep=ctx.choose(sweep, sweep[::5]), n_resplits=ctx.choose(20, 3))
    s = table.summary()
    method = Method(f"DDIM-{GRID_STEPS}", "ddim", GRID_STEPS)
    grid_seeds = list(range(ctx.seed, ctx.seed + GRID_SIDE**2))
    grids = {"vanilla": draw_samples(setup.denoiser, method, grid_seeds),
             "gls-tc": draw_samples(setup.denoiser, method, grid_seeds, start="gls", t_start=table.critical["t_c"],
                                    gls=setup.gls)}

    fig = _figure(7.4, 7.6)
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.0, 1.05])
    ax_t, ax_b = top.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1.0]})
    ax_v, ax_g = bottom.subplots(1, 2)
    rec = Recorder()
    _table_panel(rec, ax_t, s, table)
    _gain_panel(rec, ax_b, s, table)
    shape = setup.dataset.shape
    for ax, letter, (start, samples) in zip((ax_v, ax_g), "cd", grids.items()):
        images = samples.x.reshape(GRID_SIDE, GRID_SIDE, -1)
        title = (f"DDIM-{GRID_STEPS} vanilla (from step {samples.config['step_start']})" if start == "vanilla" else
                 f"DDIM-{GRID_STEPS}, GLS at $t_c$ (step {samples.config['step_start']})")
        rec.axes(ax, letter, "pixel column", "pixel row", title)
        rec.image(ax, f"{start} samples", decoded_mosaic(images, shape), cmap="gray_r", vmin=-1, vmax=1)
        ax.grid(False)
        ax.set_xticks([])
        ax.set_yticks([])
    fd = {k: _fd_of(s, k) for k in ("DDPM", "DDIM", "PNDM")}
    paper = paper_table1()
    paper_mnist = paper[paper.dataset == "MNIST"].to_dict(orient="records")
    summary = {"metric": table.primary, "critical": table.critical,
               "floor": {k: {"value": v.value, "ci_low": v.ci_low, "ci_high": v.ci_high} for k, v in table.floor.items()},
               "summary": s.to_dict(orient="records"), "markdown": table.to_markdown(),
               "grid": {k: {"step_start": v.config["step_start"], "nfe": v.nfe, "seeds": f"{grid_seeds[0]}-{grid_seeds[-1]}"}
                        for k, v in grids.items()},
               "paper_reference": {"label": PAPER_FID_LABEL, "rows": paper_mnist}}
    parts = "; ".join(f"{name}: " + ", ".join(f"n = {n} {v:.3g} → {g:.3g}" for n, v, g in rows)
                      for name, rows in fd.items())
    paper_parts = "; ".join(f"n = {r['n']}: " + ", ".join(f"{k.split()[0]} {r[k]}" for k in r if "->" in k)
                            for r in paper_mnist)
    c = table.critical
    caption = (
        f"Vanilla fast samplers against the Gaussian late start on digits (Table 1 and Fig. 3 analogues). Vanilla: "
        f"N(0, I) at the uniform-skip start (step 666/800/900 for n = 3/5/10); gls-tc: the Gaussian N(alpha·mu, "
        f"alpha²·Sigma + sigma²·I) of the training data at the Gaussian-approximation t_c (step {c['step_c']}); gls-best: "
        f"the best start of a sweep chosen on separate seeds. FD on the classifier's features, mean over "
        f"{len(seeds) // setup.block_size} block(s) of {setup.block_size} samples (held-out floor "
        f"{table.floor[table.primary].value:.3g}). FD vanilla → gls-tc: {parts}. (a) the table, (b) FD per sampler "
        f"and n, (c, d) the same {GRID_SIDE**2} seeds of DDIM-{GRID_STEPS} from the vanilla start and from GLS at t_c. "
        f"For reference only, the {PAPER_FID_LABEL}, vanilla → gls: {paper_parts}." + _quick_note(ctx))
    config = {**table.config, "grid": {"method": "ddim", "n_steps": GRID_STEPS, "seeds": f"{grid_seeds[0]}-{grid_seeds[-1]}",
                                       "starts": {k: v.config for k, v in grids.items()}}}
    return FigureOutput(fig, rec.frame(), summary, caption, config)


def _fd_of(s: pd.DataFrame, sampler: str) -> list[tuple[int, float, float]]:
    part = s[s.sampler == sampler].sort_values("n")
    return [(int(n), float(v), float(g)) for n, v, g in zip(part.n, part.vanilla, part["gls-tc"])]


def _table_panel(rec: Recorder, ax, s: pd.DataFrame, table) -> None:
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


def _gain_panel(rec: Recorder, ax, s: pd.DataFrame, table) -> None:
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


# ---------------------------------------------------------------------------------------------
# figure 10
# ---------------------------------------------------------------------------------------------
@recipe(10, "diversity", "Diversity: class shares and entropy of DDIM-n vs gls-DDIM-n (Fig. 4)")
@single_threaded
def figure_diversity(ctx: FigureContext) -> FigureOutput:
    from symbreak.experiments.paper.diversity import PAPER_LABEL, diversity, paper_diversity, plot_diversity

    setup = evaluation_setup(ctx)
    seeds = seed_blocks(ctx, setup, ctx.choose(FULL_DIVERSITY_BLOCKS, QUICK_DIVERSITY_BLOCKS))
    result = diversity(setup, seeds, n_boot=ctx.choose(1000, 200))
    fig = _figure(7.4, 7.2)
    gs = fig.add_gridspec(2, 2, height_ratios=[1.0, 0.6], width_ratios=[1.2, 1.0])
    ax_s, ax_e, ax_p = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1]), fig.add_subplot(gs[1, :])
    rec = Recorder()
    rec.axes(ax_s, "a", "share", "set")
    rec.axes(ax_e, "b", "n", "entropy")
    rec.axes(ax_p, "c", "share", "set")
    with warnings.catch_warnings():  # plot_diversity calls tight_layout; the constrained engine is restored below
        warnings.simplefilter("ignore", UserWarning)
        plot_diversity(result, axes=[ax_s, ax_e, ax_p])
    fig.set_layout_engine("constrained")
    for ax, letter in ((ax_s, "a"), (ax_e, "b"), (ax_p, "c")):
        ax.set_title(f"({letter}) " + ax.get_title(), loc="left", fontsize=8)
        ax.set_title("")
    k = result.num_classes
    shares = result.shares
    rec.table(ax_s, "class shares", [{"set": r["set"], "class": c, "share": r[f"share_{c}"]}
                                      for r in shares.to_dict(orient="records") for c in range(k)])
    rec.table(ax_e, "entropy", [{"set": r["set"], "kind": r["kind"], "n": r["n"], "nfe": r["nfe"],
                                 "entropy": r["entropy"], "entropy_ci_low": r["entropy_ci_low"],
                                 "entropy_ci_high": r["entropy_ci_high"], "kl_to_train": r["kl_to_train"]}
                                for r in shares.to_dict(orient="records")])
    paper = paper_diversity()
    rec.table(ax_p, "paper reference", [{"set": r["set"], "source": PAPER_LABEL, "entropy": r["entropy_bits"]}
                                        for r in paper.to_dict(orient="records")])
    entropy = {r["set"]: {"entropy": r["entropy"], "ci": [r["entropy_ci_low"], r["entropy_ci_high"]],
                          "kl_to_train": r["kl_to_train"]} for r in shares.to_dict(orient="records")}
    summary = {"entropy_bits": entropy, "critical": result.critical, "n_samples": len(seeds),
               "paper_reference": {"label": PAPER_LABEL, "rows": paper.to_dict(orient="records")}}
    listed = "; ".join(f"{name} {v['entropy']:.3f} [{v['ci'][0]:.3f}, {v['ci'][1]:.3f}]" for name, v in entropy.items())
    caption = (
        f"Diversity on digits (Fig. 4 analogue): class shares by the frozen classifier of the training and held-out "
        f"parts and of {len(seeds)} samples each (seeds {seeds[0]}–{seeds[-1]}) of DDPM with all 1000 steps, "
        f"DDIM-n from the vanilla start and gls-DDIM-n (Gaussian late start at t_c, step "
        f"{result.critical['step_c']}), n = 3, 5, 10. (a) shares, (b) entropy of the shares in bits against n (95 % "
        f"bias-corrected bootstrap intervals): {listed} (the maximum is log2 10 = 3.322). (c) For reference only, "
        f"the {PAPER_LABEL}: " + "; ".join(f"{r['set']} {r['entropy_bits']:.3f}" for r in paper.to_dict(orient="records"))
        + " bits." + _quick_note(ctx))
    return FigureOutput(fig, rec.frame(), summary, caption, result.config)


# ---------------------------------------------------------------------------------------------
# layout helpers
# ---------------------------------------------------------------------------------------------
def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _drop_figure_legends(fig) -> None:
    """Remove the figure-level legend the evaluation plots add below their axes (the panel keeps its own)."""
    for legend in list(fig.legends):
        legend.remove()
