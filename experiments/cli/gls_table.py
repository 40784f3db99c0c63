"""``symbreak gls-table``: vanilla fast samplers against the Gaussian late start (the paper's Table 1
analogue, :func:`symbreak.experiments.paper.gls_table.gls_table`), with the paper's own Table 1
printed beside it for reference."""
from __future__ import annotations

import argparse

from symbreak.experiments.cli.args import (
    Evaluation,
    add_evaluation_arguments,
    add_moments_argument,
    add_tc_argument,
    raw_help,
    seed_spec,
)

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
    p = raw_help(subparsers, "gls-table", "vanilla vs Gaussian late start for DDPM/DDIM/PNDM (Table 1)", DESCRIPTION)
    add_evaluation_arguments(p, blocks="gls_blocks")
    p.add_argument("--selection-seeds", type=seed_spec, default=None,
                   help="seeds that pick the best swept start (one block from 1000000 by default); "
                        "must not overlap --seeds")
    add_tc_argument(p, "the gls-tc row")
    add_moments_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from symbreak.experiments.paper.gls_table import PAPER_LABEL, default_sweep, gls_table, paper_table1
    from symbreak.experiments.paper.report import parse_seed_list

    ev = Evaluation.start(args, "gls-table", "gls_blocks", "row", moments=args.moments)
    block = ev.setup.block_size
    selection = (parse_seed_list(args.selection_seeds, block, "--selection-seeds") if args.selection_seeds
                 else ev.sizes.selection_seeds(block))
    sweep = default_sweep(ev.setup.schedule)[::ev.sizes.sweep_every]
    table = gls_table(ev.setup, ev.seeds, selection, sweep=sweep, tc=args.tc, n_resplits=ev.sizes.n_resplits)
    markdown = table.to_markdown()
    frames = {"": table.rows, "summary": table.summary(), "sweep": table.sweep}
    return ev.finish(table.config, table.to_dict(), frames, texts={"gls_table.md": markdown}, text=lambda s: (
        f"{markdown}\n(the last table is the {PAPER_LABEL}; {len(paper_table1())} rows)\n"
        f"gls-table on {args.data}: {len(ev.seeds)} samples per row, {s:.1f} s; wrote {ev.out}/gls_table.*"))
