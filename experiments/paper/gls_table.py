"""The GLS table (the paper's Table 1 analogue): vanilla fast samplers against the Gaussian late start.

For each sampler (DDPM = DDIM with eta = 1, DDIM with eta = 0, PNDM) and number of steps n:

* **vanilla**: N(0, I) at T with DDIM's uniform skip (on the discrete schedule the grid starts at step
  (n - 1) * (N // n): 666 / 800 / 900 of 1000 for n = 3 / 5 / 10, as in the paper);
* **gls-tc**: the Gaussian late start at the theory's critical time t_c (Gaussian approximation by
  default; no sweep), every step spent in [0, t_c];
* **gls-best**: the Gaussian late start at the best start of a sweep. The sweep ranks starts by the
  primary metric (FD, or W2 for mixtures) on **separate selection seeds**; the chosen start is then
  measured on the evaluation seeds like the others, so its number carries no winner's-curse bias;
* **teleport-tc** (on request, ``starts``): the noise start carried from T to t_c by the probability-flow
  ODE of the data's Gaussian (Gaussian teleportation, :class:`~symbreak.experiments.sampling.starts.Teleport`).

Every row is measured in seed blocks of the held-out size against the training part (mean over
blocks, bootstrap CI over blocks; see :mod:`.suite`), next to the held-out floor. All rows of a
(sampler, n) use the same seeds, so each start is compared with vanilla by a paired bootstrap over the
blocks (:meth:`GLSTable.paired`: the gain vanilla / start and the difference, with intervals).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from symbreak.analysis.metrics import entropy_bits
from symbreak.experiments.paper.late_start import start_times
from symbreak.experiments.paper.report import markdown_table
from symbreak.experiments.paper.setup import Setup, critical_summary, exact_tc, gaussian_tc
from symbreak.experiments.paper.suite import Measurement, measurements_frame, paired_gain, summarise_blocks
from symbreak.experiments.runtime.threads import cpu_threads
from symbreak.experiments.sampling.draw import Method, Samples, draw_samples
from symbreak.experiments.sampling.starts import TeleportSource

TABLE_SAMPLERS: dict[str, tuple[str, dict]] = {"DDPM": ("ddim", {"eta": 1.0}), "DDIM": ("ddim", {}),
                                               "PNDM": ("pndm", {})}
TABLE_STEPS = (3, 5, 10)
STARTS = ("vanilla", "gls-tc", "gls-best")
ALL_STARTS = STARTS + ("teleport-tc", "trailing")  # trailing: N(0, I) at T on diffusers' trailing spacing
RATIO_METRICS = ("fd", "sw", "w2")  # positive, lower is better: vanilla / GLS is a gain factor
PAPER_TABLE = Path(str(files("symbreak.experiments") / "data")) / "paper_table1_fid.csv"
PAPER_LABEL = "paper's FID on its datasets (Inception features, 50k samples) -- for reference, not comparable with FD"


def critical_time(setup: Setup, tc: str = "gaussian") -> dict:
    """The theory's t_c (``gaussian`` or ``exact``) as :func:`~.evaluation.critical_summary`."""
    times = {"gaussian": gaussian_tc, "exact": exact_tc}
    if tc not in times:
        raise ValueError(f"--tc: expected gaussian or exact, got {tc!r}")
    info = {"which": tc, **critical_summary(times[tc](setup), setup.schedule)}
    if info["t_c"] is None:
        raise ValueError(f"--tc: the {tc} critical time does not exist here: {info['absent']}")
    return info


def default_sweep(schedule) -> np.ndarray:
    """Sweep starts: the late-start grid (20 points up to T) up to 0.9 T (steps 49, 99, ..., 899)."""
    t = start_times(schedule, 20)
    return t[t <= 0.9 * schedule.T + 1e-12]


@dataclass
class GLSTable:
    """Tidy rows (sampler, n, start, t_start, step, nfe, metric, value, CI, ...), the sweep of the
    primary metric on the selection seeds, the floor, the t_c used and the resolved configuration."""

    rows: pd.DataFrame
    sweep: pd.DataFrame
    floor: dict[str, Measurement]
    critical: dict
    primary: str
    train_entropy: float
    config: dict
    blocks: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def starts(self) -> tuple[str, ...]:
        return tuple(self.config.get("starts", STARTS))

    def to_frame(self) -> pd.DataFrame:
        return self.rows

    def paired(self, metric: str | None = None, level: float = 0.95, reference: str = "vanilla") -> pd.DataFrame:
        """Each start against ``reference`` (vanilla, or e.g. trailing) on the same seed blocks (sampler, n,
        start): the gain reference / start and the difference reference - start of the metric's means, with
        paired bootstrap intervals."""
        metric = metric or self.primary
        part = self.blocks[self.blocks.metric == metric]
        records = []
        for (sampler, n), g in part.groupby(["sampler", "n"], sort=False):
            vanilla = g[g.start == reference].sort_values("block").value.to_numpy()
            for start in (s for s in self.starts if s != reference):
                other = g[g.start == start].sort_values("block").value.to_numpy()
                records.append({"sampler": sampler, "n": n, "start": start, "metric": metric,
                                **asdict(paired_gain(vanilla, other, level))})
        return pd.DataFrame(records)

    def summary(self, metric: str | None = None) -> pd.DataFrame:
        """One row per (sampler, n): the metric for each start, the starts' steps, and for positive
        lower-is-better metrics the gain factors vanilla / GLS and t_c's excess over the best start."""
        metric = metric or self.primary
        part = self.rows[self.rows.metric == metric]
        records = []
        for (sampler, n), g in part.groupby(["sampler", "n"], sort=False):
            by = g.set_index("start")
            rec = {"sampler": sampler, "n": n, "nfe": int(by.loc["vanilla", "nfe"]),
                   "step_tc": by.loc["gls-tc", "step"], "step_best": by.loc["gls-best", "step"]}
            for start in self.starts:
                rec.update({start: by.loc[start, "value"], f"{start}_ci_low": by.loc[start, "ci_low"],
                            f"{start}_ci_high": by.loc[start, "ci_high"]})
            if metric in RATIO_METRICS:
                rec["gain_tc"] = rec["vanilla"] / rec["gls-tc"]
                rec["gain_best"] = rec["vanilla"] / rec["gls-best"]
                rec["tc_over_best"] = rec["gls-tc"] / rec["gls-best"] - 1.0
                rec.update({f"gain_{start}": rec["vanilla"] / rec[start] for start in self.starts[3:]})
            records.append(rec)
        return pd.DataFrame(records)

    def to_markdown(self) -> str:
        """A markdown section per metric (mean [95 % CI] over seed blocks), the floor, and the
        paper's Table 1 beside it, labelled as the paper's FID on its datasets."""
        c = self.critical
        step = f"step {c['step_c']}" if c.get("step_c") is not None else f"t = {c['t_c']:.4g}"
        lines = [f"# GLS table: {self.config['data']['name']}\n",
                 f"vanilla: N(0, I) at T with uniform skip; gls-tc: Gaussian late start at the {c['which']} "
                 f"critical time ({step}); gls-best: best start of the sweep (chosen on separate seeds). "
                 f"Mean [95 % CI] over {self._blocks()} seed blocks of {self.config['metrics']['block_size']} "
                 "samples against the training split.\n"]
        for metric in self.floor:
            lines.append(f"\n## {metric}" + (" (lower is better)" if metric in RATIO_METRICS + ("kid", "kl") else ""))
            floor = self.floor[metric]
            extra = f"; training set {self.train_entropy:.3f} bits" if metric == "entropy" else ""
            lines.append(f"\nheld-out floor: {_fmt(floor.value)} [{_fmt(floor.ci_low)}, {_fmt(floor.ci_high)}]{extra}\n")
            lines.append(markdown_table(self._display(metric)))
        lines.append(f"\n## Paired gains over vanilla ({self.primary}; the same seed blocks, paired bootstrap)\n")
        lines.append(markdown_table(self._paired_display()))
        lines.append(f"\n## Paper's Table 1 ({PAPER_LABEL})\n")
        lines.append(markdown_table(paper_table1()))
        return "\n".join(lines)

    def _blocks(self) -> int:
        return int(self.rows.n_blocks.max())

    def _display(self, metric: str) -> pd.DataFrame:
        s = self.summary(metric)
        out = pd.DataFrame({"sampler": s.sampler, "n": s.n, "NFE": s.nfe})
        for start in self.starts:
            out[start] = [f"{_fmt(v)} [{_fmt(lo)}, {_fmt(hi)}]" for v, lo, hi in
                          zip(s[start], s[f"{start}_ci_low"], s[f"{start}_ci_high"])]
        out["best step"] = s.step_best
        if metric in RATIO_METRICS:
            out["vanilla/gls-tc"] = s.gain_tc.map(lambda v: f"{v:.2f}x")
            out["vanilla/gls-best"] = s.gain_best.map(lambda v: f"{v:.2f}x")
            out["tc vs best"] = s.tc_over_best.map(lambda v: f"{100 * v:+.0f}%")
        return out

    def _paired_display(self) -> pd.DataFrame:
        p = self.paired()
        return pd.DataFrame({"sampler": p.sampler, "n": p.n, "start": p.start,
                             "vanilla / start": [f"{_fmt(v)}x [{_fmt(lo)}, {_fmt(hi)}]" for v, lo, hi in
                                                 zip(p.ratio, p.ratio_low, p.ratio_high)],
                             "vanilla - start": [f"{_fmt(v)} [{_fmt(lo)}, {_fmt(hi)}]" for v, lo, hi in
                                                 zip(p.difference, p.difference_low, p.difference_high)],
                             "blocks": p.n_blocks})

    def to_dict(self) -> dict:
        return {"primary": self.primary, "critical": self.critical, "train_entropy": self.train_entropy,
                "floor": {k: asdict(v) for k, v in self.floor.items()},
                "summary": self.summary().to_dict(orient="records"),
                "rows": self.rows.to_dict(orient="records"), "sweep": self.sweep.to_dict(orient="records"),
                "paired": self.paired().to_dict(orient="records")}


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def paper_table1() -> pd.DataFrame:
    """The paper's Table 1 (FID) as dataset, n, and 'vanilla -> gls' per sampler."""
    paper = pd.read_csv(PAPER_TABLE)
    wide = paper.pivot_table(index=["dataset", "n_steps"], columns=["sampler", "start"], values="fid", sort=False)
    out = wide.index.to_frame(index=False).rename(columns={"n_steps": "n"})
    for sampler in dict.fromkeys(paper.sampler):
        out[f"{sampler} vanilla -> gls"] = [f"{v:.2f} -> {g:.2f}" for v, g in
                                            zip(wide[(sampler, "vanilla")], wide[(sampler, "gls")])]
    return out


def gls_table(setup: Setup, seeds: Sequence[int], selection_seeds: Sequence[int], *,
              samplers: Mapping[str, tuple[str, dict]] = TABLE_SAMPLERS, steps: Sequence[int] = TABLE_STEPS,
              sweep: ArrayLike | None = None, tc: str = "gaussian", n_resplits: int = 20,
              threads: int = 1, starts: Sequence[str] = STARTS) -> GLSTable:
    """Vanilla vs GLS at t_c vs GLS at the best swept start (and, in ``starts``, teleportation at t_c)
    for each sampler (label -> (sampler name, options); any of :data:`~.samplers.SAMPLERS`) and n."""
    starts = _check_starts(starts)
    overlap = set(seeds) & set(selection_seeds)
    if overlap:
        raise ValueError(f"--selection-seeds: must not overlap --seeds (shared seed {min(overlap)})")
    schedule, suite = setup.schedule, setup.suite
    sweep = default_sweep(schedule) if sweep is None else np.sort(np.asarray(sweep, dtype=np.float64))
    rows, blocks, sweep_rows = [], [], []
    with cpu_threads(threads):
        crit = critical_time(setup, tc)
        for label, (name, options) in samplers.items():
            for n in steps:
                method = Method(f"{label}-{n}", name, n, dict(options))
                swept = _sweep(setup, method, selection_seeds, sweep, threads)
                sweep_rows += [{"sampler": label, "n": n, **r} for r in swept]
                best = min(swept, key=lambda r: r["value"])["t_start"]
                drawn: dict[tuple[str, float | None], Samples] = {}
                for start in starts:
                    spaced = replace(method, spacing="trailing") if start == "trailing" else method
                    samples = _draw(setup, spaced, seeds, *_start_of(start, crit["t_c"], best), drawn, threads)
                    keys = {"sampler": label, "n": n, "start": start, "t_start": samples.config["t_start"],
                            "step": samples.config["step_start"], "nfe": samples.nfe}
                    values = suite.block_values(samples.x)
                    rows.append((keys, {m: summarise_blocks(v, len(seeds)) for m, v in values.items()}))
                    blocks += [{"sampler": label, "n": n, "start": start, "metric": m, "block": b, "value": float(x)}
                               for m, v in values.items() for b, x in enumerate(v)]
        floor = suite.floor(n_resplits=n_resplits)
    train_entropy = entropy_bits(suite.train_shares)
    config = {**setup.config, "recipe": "gls-table", "samplers": {k: {"sampler": v[0], "options": v[1]}
              for k, v in samplers.items()}, "steps": list(steps), "sweep": list(map(float, sweep)),
              "tc": tc, "seeds": _seed_note(seeds), "selection_seeds": _seed_note(selection_seeds),
              "n_resplits": n_resplits, "threads": threads, "starts": list(starts)}
    return GLSTable(measurements_frame(rows), pd.DataFrame(sweep_rows), floor, crit, suite.primary,
                    train_entropy, config, pd.DataFrame(blocks))


def _check_starts(starts: Sequence[str]) -> tuple[str, ...]:
    starts = tuple(starts)
    if starts[:3] != STARTS or any(s not in ALL_STARTS for s in starts) or len(set(starts)) != len(starts):
        raise ValueError(f"starts: expected {', '.join(STARTS)} followed by any of {', '.join(ALL_STARTS[3:])}, "
                         f"got {', '.join(starts) or 'none'}")
    return starts


def _start_of(start: str, t_c: float, best: float) -> tuple[str, float | None]:
    """(start kind of :func:`_draw`, t_start) of a table start."""
    return {"vanilla": ("noise", None), "gls-tc": ("gls", t_c), "gls-best": ("gls", best),
            "teleport-tc": ("teleport", t_c), "trailing": ("noise", None)}[start]


def _seed_note(seeds: Sequence[int]) -> dict:
    return {"count": len(seeds), "first": int(seeds[0]), "last": int(seeds[-1])}


def _draw(setup: Setup, method: Method, seeds: Sequence[int], kind: str, t: float | None,
          drawn: dict, threads: int) -> Samples:
    """Samples of one start, reused when two starts coincide (t_c on the best swept start)."""
    key = (kind, t, method.spacing)
    if key not in drawn:
        source = TeleportSource(setup.gls.y) if kind == "teleport" else setup.gls
        drawn[key] = draw_samples(setup.denoiser, method, seeds, start="noise" if t is None else kind, t_start=t,
                                  gls=source, threads=threads)
    return drawn[key]


def _sweep(setup: Setup, method: Method, seeds: Sequence[int], sweep: np.ndarray, threads: int) -> list[dict]:
    """The primary metric of GLS starts over the sweep, on the selection seeds (starts below step
    n - 1 cannot hold n steps and are skipped)."""
    suite, out = setup.suite, []
    lowest = _lowest_start(setup, method.n_steps)
    for t in sweep[sweep >= lowest]:
        samples = draw_samples(setup.denoiser, method, seeds, start="gls", t_start=float(t), gls=setup.gls,
                               threads=threads)
        value = suite.measure(samples.x, [suite.primary])[suite.primary].value
        out.append({"t_start": samples.config["t_start"], "step": samples.config["step_start"],
                    "metric": suite.primary, "value": value})
    if not out:
        raise ValueError(f"--sweep: no start in the sweep can hold {method.n_steps} steps")
    return out


def _lowest_start(setup: Setup, n_steps: int) -> float:
    schedule = setup.schedule
    return float(schedule.t_of_step(n_steps - 1)) if schedule.discrete else 0.0


__all__ = ["ALL_STARTS", "GLSTable", "PAPER_LABEL", "STARTS", "TABLE_SAMPLERS", "TABLE_STEPS", "critical_time",
           "default_sweep",
           "gls_table", "paper_table1"]
