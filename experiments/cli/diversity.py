"""``symbreak diversity``: class shares and their entropy for the training set, DDPM with every step,
DDIM-n and gls-DDIM-n (the paper's Fig. 4 analogue, :func:`symbreak.experiments.paper.diversity.diversity`)."""
from __future__ import annotations

import argparse

from symbreak.experiments.cli.args import (
    Evaluation,
    add_evaluation_arguments,
    add_moments_argument,
    add_tc_argument,
    raw_help,
)

DESCRIPTION = """\
Class shares (the frozen classifier's labels; the nearest mode for gmm-2d) and their entropy in bits
for the training set, the held-out set, DDPM with all steps from T, DDIM-n from N(0, I) with the
uniform skip, and gls-DDIM-n (Gaussian late start at the theory's critical time), n = 3, 5, 10.
The paper's Fig. 4 numbers (CelebA64, race classifier) are shown as a separate labelled reference.

writes DIR/diversity.csv, diversity.json, diversity.config.json and diversity.png/.pdf.

examples:
  symbreak diversity --data digits --out /tmp/diversity
"""
COLUMNS = ["set", "nfe", "step", "entropy", "entropy_ci_low", "entropy_ci_high", "kl_to_train"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = raw_help(subparsers, "diversity", "class shares and entropy: DDPM, DDIM-n, gls-DDIM-n (Fig. 4)", DESCRIPTION)
    add_evaluation_arguments(p, blocks="diversity_blocks")
    add_tc_argument(p, "the GLS start")
    add_moments_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from symbreak.experiments.paper.diversity import PAPER_LABEL, diversity, paper_diversity, plot_diversity
    from symbreak.experiments.paper.report import markdown_table

    ev = Evaluation.start(args, "diversity", "diversity_blocks", "set", moments=args.moments)
    result = diversity(ev.setup, ev.seeds, tc=args.tc, n_boot=ev.sizes.n_boot)
    figure = plot_diversity(result)
    return ev.finish(result.config, result.to_dict(), {"": result.shares}, figure=figure, text=lambda s: (
        f"{markdown_table(result.shares[COLUMNS].round(4))}\n{PAPER_LABEL}:\n{markdown_table(paper_diversity())}\n"
        f"diversity on {args.data}: {len(ev.seeds)} samples per set, {s:.1f} s; wrote {ev.out}/diversity.*"))
