"""Diversity (the paper's Fig. 4 analogue): class shares and their entropy for the training set, DDPM
with every step, and DDIM-n from a vanilla start against gls-DDIM-n, n = 3, 5, 10.

Classes are the frozen classifier's labels (the nearest mode for Gaussian mixtures), for the training
set as for the samples. Shares are taken over all samples of a set (not per seed block). The entropy
is the plug-in entropy of the shares in bits (as the paper reports it); its 95 % interval is a
bias-corrected percentile bootstrap over samples: resampling N labels with replacement is a
multinomial draw of counts, and since the plug-in entropy is biased low by ~(K - 1) / (2 N ln 2) bits,
the percentile interval of the replicates is shifted by the replicates' mean bias (mean of replicates
minus the estimate). Uncorrected, that interval can miss the estimate entirely when the shares are
near uniform (measured on the digits training set: 3.321 bits, percentile interval [3.311, 3.320]).
KL is to the training set's shares, in bits.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd

from symbreak.analysis import metrics as M
from symbreak.experiments.paper.gls_table import critical_time
from symbreak.experiments.paper.setup import Setup
from symbreak.experiments.runtime.threads import cpu_threads
from symbreak.experiments.sampling.draw import Method, draw_samples

DIVERSITY_STEPS = (3, 5, 10)
LABEL_SOURCES = {"classifier": "classifier labels", "features": "k-means clusters", "mixture": "nearest mode"}
PAPER_DIVERSITY = Path(str(files("symbreak.experiments") / "data")) / "paper_diversity_celeba64.csv"
PAPER_LABEL = "paper's Fig. 4: CelebA64, race-classifier shares of 50 000 samples (reference, not our data)"


@dataclass
class DiversityResult:
    """One row per set (training, held-out, DDPM with every step, DDIM-n, gls-DDIM-n): its class
    shares, entropy (bits) with a bootstrap CI and KL to the training shares; plus the t_c used."""

    shares: pd.DataFrame
    num_classes: int
    critical: dict
    config: dict

    def to_frame(self) -> pd.DataFrame:
        return self.shares

    def to_dict(self) -> dict:
        return {"critical": self.critical, "num_classes": self.num_classes,
                "rows": self.shares.to_dict(orient="records")}


def entropy_interval(shares: np.ndarray, n: int, n_boot: int = 1000, level: float = 0.95,
                     seed: int = 0) -> tuple[float, float]:
    """Bias-corrected percentile-bootstrap interval of the plug-in entropy (bits) of class ``shares``
    estimated from ``n`` labels: replicates are Multinomial(n, shares) counts (= resampling the labels
    with replacement); the interval of their entropies is shifted by their mean minus the estimate."""
    counts = np.random.default_rng(seed).multinomial(int(n), shares, size=int(n_boot)) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        replicates = -np.where(counts > 0, counts * np.log2(counts), 0.0).sum(axis=1)
    bias = replicates.mean() - M.entropy_bits(shares)
    low, high = np.quantile(replicates, [(1 - level) / 2, (1 + level) / 2]) - bias
    return float(low), float(min(high, np.log2(len(shares))))  # no entropy exceeds log2 K


def class_row(name: str, labels: np.ndarray, num_classes: int, reference: np.ndarray, *, kind: str,
              n: int | None, nfe: int | None, step: int | None, n_boot: int = 1000, seed: int = 0) -> dict:
    """Shares, entropy (with a bias-corrected bootstrap CI) and KL to ``reference`` of one set."""
    shares = M.class_histogram(labels, num_classes)
    low, high = entropy_interval(shares, labels.size, n_boot, seed=seed)
    return {"set": name, "kind": kind, "n": n, "nfe": nfe, "step": step, "n_samples": int(labels.size),
            **{f"share_{k}": float(v) for k, v in enumerate(shares)},
            "entropy": M.entropy_bits(shares), "entropy_ci_low": low, "entropy_ci_high": high,
            "kl_to_train": M.kl_divergence_bits(shares, reference)}


def diversity(setup: Setup, seeds: Sequence[int], *, steps: Sequence[int] = DIVERSITY_STEPS, tc: str = "gaussian",
              n_boot: int = 1000, threads: int = 1) -> DiversityResult:
    """Class shares and entropy of the training set, the held-out set, DDPM with every step from T,
    and DDIM-n (vanilla) and gls-DDIM-n (Gaussian late start at t_c) for each n in ``steps``."""
    suite, k = setup.suite, setup.suite.num_classes
    train_shares = suite.train_shares
    row = dict(num_classes=k, reference=train_shares, n_boot=n_boot)
    rows = [class_row("training set", suite.label(suite.train), kind="data", n=None, nfe=None, step=None, **row),
            class_row("held-out", suite.label(suite.held_out), kind="data", n=None, nfe=None, step=None, **row)]
    with cpu_threads(threads):
        crit = critical_time(setup, tc)
        runs = [("DDPM (all steps)", "ddpm-all", Method("DDPM (all steps)", "ddpm", None), "noise", None)]
        for n in steps:
            runs.append((f"DDIM-{n}", "ddim", Method(f"DDIM-{n}", "ddim", n), "noise", None))
            runs.append((f"gls-DDIM-{n}", "gls-ddim", Method(f"gls-DDIM-{n}", "ddim", n), "gls", crit["t_c"]))
        for name, kind, method, start, t in runs:
            samples = draw_samples(setup.denoiser, method, seeds, start=start, t_start=t, gls=setup.gls,
                                   threads=threads)
            rows.append(class_row(name, suite.label(samples.x), kind=kind, n=method.n_steps or samples.nfe,
                                  nfe=samples.nfe, step=samples.config["step_start"], **row))
    config = {**setup.config, "recipe": "diversity", "steps": list(steps), "tc": tc, "n_boot": n_boot,
              "seeds": {"count": len(seeds), "first": int(seeds[0]), "last": int(seeds[-1])}, "threads": threads}
    frame = pd.DataFrame(rows).astype({"n": "Int64", "nfe": "Int64", "step": "Int64"})
    return DiversityResult(frame, k, crit, config)


def paper_diversity() -> pd.DataFrame:
    """The paper's Fig. 4 numbers (shares in %, entropy in bits)."""
    return pd.read_csv(PAPER_DIVERSITY)


def plot_diversity(result: DiversityResult, axes=None):
    """(a) stacked class shares per set, (b) entropy against n for DDIM and gls-DDIM with the
    training set and DDPM as horizontal references, (c) the paper's Fig. 4 as a labelled reference."""
    from symbreak.experiments.output import figure_environment, new_figure

    with figure_environment():
        if axes is None:
            fig, axes = new_figure(1, 3, 15, 4.2, gridspec_kw={"width_ratios": [1.2, 1, 1.1]})
            axes = axes[0]
        else:
            fig = axes[0].figure
        shares = result.shares
        _stacked(axes[0], shares.set.tolist(), shares[[f"share_{k}" for k in range(result.num_classes)]].to_numpy(),
                 [str(k) for k in range(result.num_classes)], "class")
        labels = LABEL_SOURCES.get(result.config["metrics"]["kind"], "nearest mode")
        axes[0].set_title(f"class shares ({result.config['data']['name']}, {labels})")
        _entropy_panel(axes[1], result)
        paper = paper_diversity()
        classes = [c for c in paper.columns if c not in ("set", "entropy_bits")]
        _stacked(axes[2], [f"{s}  ({e:.2f} bits)" for s, e in zip(paper.set, paper.entropy_bits)],
                 paper[classes].to_numpy() / 100.0, classes, "race label")
        axes[2].set_title("paper's Fig. 4 (CelebA64, race classifier)\nreference only: not our data", fontsize=9)
        if fig.get_layout_engine() is None:
            fig.tight_layout()
    return fig


def _stacked(ax, names: list[str], shares: np.ndarray, classes: list[str], legend_title: str) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.transforms import ScaledTranslation

    left = np.zeros(len(names))
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    colors = [cmap(i % cmap.N) for i in range(len(classes))]  # one distinct colour per class
    for j, cls in enumerate(classes):
        ax.barh(names, shares[:, j], left=left, color=colors[j], label=cls, edgecolor="white", lw=0.3)
        left += shares[:, j]
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share")
    ax.grid(False)
    below_label = ax.transAxes + ScaledTranslation(0, -30 / 72, ax.figure.dpi_scale_trans)  # 30 pt under the axes
    ax.legend(title=legend_title, ncol=min(5, len(classes)), loc="upper center", bbox_to_anchor=(0.5, 0),
              bbox_transform=below_label, fontsize=7, title_fontsize=8)


def _entropy_panel(ax, result: DiversityResult) -> None:
    s = result.shares
    for kind, color, label in (("ddim", "C0", "DDIM-n (vanilla)"), ("gls-ddim", "C1", "gls-DDIM-n (start at t_c)")):
        part = s[s.kind == kind].sort_values("n")
        err = np.vstack([part.entropy - part.entropy_ci_low, part.entropy_ci_high - part.entropy])
        ax.errorbar(part.n, part.entropy, yerr=err, marker="o", capsize=3, color=color, label=label)
    refs = (("training set", "k", "-"), ("held-out", "0.5", ":"), ("DDPM (all steps)", "C2", "-."))
    for name, color, ls in refs:
        value = float(s.loc[s.set == name, "entropy"].iloc[0])
        ax.axhline(value, color=color, ls=ls, lw=1.2, label=f"{name}: {value:.3f}")
    ax.set_xlabel("steps n")
    ax.set_xticks(sorted(s.loc[s.kind == "ddim", "n"].astype(int)))
    ax.set_ylabel("entropy of class shares (bits)")
    ax.set_title("class entropy against the number of steps")
    ax.legend(loc="lower right")


__all__ = ["DIVERSITY_STEPS", "DiversityResult", "PAPER_LABEL", "class_row", "diversity", "entropy_interval",
           "paper_diversity", "plot_diversity"]
