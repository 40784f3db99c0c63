"""``symbreak gls-table``: vanilla fast samplers against the Gaussian late start (the paper's Table 1
analogue), with the paper's own Table 1 printed beside it for reference."""
from __future__ import annotations

import argparse
import time

from symbreak.experiments.cli.late_start import add_evaluation_arguments, out_dir, prepare_from_args

DESCRIPTION = """\
DDPM (DDIM with eta = 1), DDIM and PNDM at n = 3, 5, 10 steps: vanilla (N(0, I) at T with the uniform
skip, start step (n-1)*(N//n)) against the Gaussian late start at the theory's critical time and at
the best start of a sweep (chosen on separate selection seeds). Metrics -- digits: FD and KID on the
classifier's features, sliced W2 on pixels, class entropy and KL; gmm-2d: exact W2, sliced W2, mode
coverage, entropy -- as mean [95 % CI] over seed blocks of the held-out size, next to the held-out
floor.

writes DIR/gls_table.md, gls_table.csv (tidy rows), gls_table_summary.csv, gls_table_sweep.csv,
gls_table.json (all numbers) and gls_table.config.json (resolved configuration).

examples:
  symbreak gls-table --data digits --out /tmp/gls-digits
  symbreak gls-table --data gmm-2d --out /tmp/gls-gmm
  symbreak gls-table --data gmm-2d --denoiser exact --quick --out /tmp/gls-quick
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("gls-table", help="vanilla vs Gaussian late start for DDPM/DDIM/PNDM (Table 1)",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_evaluation_arguments(p, blocks=5, quick_blocks=2)
    p.add_argument("--selection-seeds", default=None,
                   help="seeds that pick the best swept start (one block from 1000000 by default); "
                        "must not overlap --seeds")
    p.add_argument("--tc", default="gaussian", help="critical time of the gls-tc row: gaussian (default) | exact")
    p.add_argument("--moments", default="analytic",
                   help="GLS Gaussian: analytic (training mean and covariance, default) | empirical "
                        "(training data noised once to t_start, the paper's procedure)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from symbreak.experiments.paper.gls_table import PAPER_LABEL, gls_table, paper_table1
    from symbreak.experiments.paper.report import parse_seed_list, write_outputs
    from symbreak.experiments.sampling.seeds import parse_seeds

    if args.tc not in ("gaussian", "exact"):
        raise ValueError(f"--tc: expected gaussian or exact, got {args.tc!r}")
    if args.selection_seeds is not None:
        parse_seeds(args.selection_seeds, "--selection-seeds")
    began = time.perf_counter()
    setup, seeds = prepare_from_args(args, blocks=5, quick_blocks=2, moments=args.moments)
    block = setup.block_size
    selection = (parse_seed_list(args.selection_seeds, block, "--selection-seeds") if args.selection_seeds
                 else list(range(1_000_000, 1_000_000 + block)))
    sweep = None
    if args.quick:
        from symbreak.experiments.paper.gls_table import default_sweep

        sweep = default_sweep(setup.schedule)[::5]
    table = gls_table(setup, seeds, selection, sweep=sweep, tc=args.tc, n_resplits=3 if args.quick else 20)
    seconds = time.perf_counter() - began
    table.config.update({"command": "gls-table", "seconds": seconds})
    markdown = table.to_markdown()
    out = write_outputs(out_dir(args, "gls-table"), "gls_table", config=table.config,
                        results={**table.to_dict(), "seconds": seconds},
                        frames={"": table.rows, "summary": table.summary(), "sweep": table.sweep},
                        texts={"gls_table.md": markdown})
    print(markdown)
    print(f"(the last table is the {PAPER_LABEL}; {len(paper_table1())} rows)")
    print(f"gls-table on {args.data}: {len(seeds)} samples per row, {seconds:.1f} s; wrote {out}/gls_table.*")
    return 0
