"""One home for the sizes of a full and a quick run of the paper's evaluations.

The command line (``--quick``) and the figure recipes (``symbreak figures --quick``) both read a
:class:`Settings`: ``Settings.full()`` gives the numbers the README reports, ``Settings.quick()`` a run
of seconds for tests and previews (a small network and classifier, seed blocks of 60 samples, fewer
start times, resplits and bootstrap draws).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

SELECTION_SEED = 1_000_000  # first seed of the block that picks the best swept start (disjoint from 0-based seeds)


@dataclass(frozen=True)
class Settings:
    """Sizes of one evaluation run.

    ``mode``: 'full' or 'quick'; ``network_*`` / ``classifier_steps``: the quick run's small denoiser and
    feature classifier (None: each data set's default recipe); ``block_size``: samples per seed block (None: the held-out size);
    ``n_resplits``: other splits of the real data behind the floor's interval; ``n_boot``: bootstrap
    draws of the entropy interval; ``late_start_points``: start times of the late-start curves;
    ``sweep_every``: every k-th start of the GLS sweep; ``exact_tc``: whether the exact-score t_c is
    computed beside the Gaussian one; ``*_blocks``: default seed blocks of each command.
    """

    mode: str = "full"
    network_width: int | None = None
    network_depth: int | None = None
    network_steps: int | None = None
    classifier_steps: int = 1500
    block_size: int | None = None
    n_resplits: int = 20
    n_boot: int = 1000
    late_start_points: int | None = None
    sweep_every: int = 1
    exact_tc: bool = True
    late_start_blocks: int = 1
    gls_blocks: int = 5
    diversity_blocks: int = 5

    @classmethod
    def full(cls) -> Settings:
        return cls()

    @classmethod
    def quick(cls) -> Settings:
        return cls(mode="quick", network_width=64, network_depth=1, network_steps=300, classifier_steps=200,
                   block_size=60, n_resplits=3, n_boot=200, late_start_points=5, sweep_every=5, exact_tc=False,
                   gls_blocks=2, diversity_blocks=1)

    @classmethod
    def of(cls, quick: bool) -> Settings:
        """``quick()`` when ``quick``, else ``full()``."""
        return cls.quick() if quick else cls.full()

    def critical_kinds(self) -> tuple[str, ...]:
        """The theory's critical times drawn beside measured curves."""
        return ("gaussian", "exact") if self.exact_tc else ("gaussian",)

    def selection_seeds(self, block_size: int) -> list[int]:
        """The default block of seeds that picks the best swept start."""
        return list(range(SELECTION_SEED, SELECTION_SEED + block_size))

    def to_dict(self) -> dict:
        return asdict(self)
