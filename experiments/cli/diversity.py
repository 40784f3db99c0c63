"""``symbreak diversity``: class shares and their entropy for the training set, DDPM with every step,
DDIM-n and gls-DDIM-n (the paper's Fig. 4 analogue)."""
from __future__ import annotations

import argparse
import time

from symbreak.experiments.cli.late_start import add_evaluation_arguments, out_dir, prepare_from_args

DESCRIPTION = """\
Class shares (the frozen classifier's labels; the nearest mode for gmm-2d) and their entropy in bits
for the training set, the held-out set, DDPM with all steps from T, DDIM-n from N(0, I) with the
uniform skip, and gls-DDIM-n (Gaussian late start at the theory's critical time), n = 3, 5, 10.
The paper's Fig. 4 numbers (CelebA64, race classifier) are shown as a separate labelled reference.

writes DIR/diversity.csv, diversity.json, diversity.config.json and diversity.png/.pdf.

examples:
  symbreak diversity --data digits --out /tmp/diversity
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("diversity", help="class shares and entropy: DDPM, DDIM-n, gls-DDIM-n (Fig. 4)",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_evaluation_arguments(p, blocks=5)
    p.add_argument("--tc", default="gaussian", help="critical time of the GLS start: gaussian (default) | exact")
    p.add_argument("--moments", default="analytic", help="GLS Gaussian: analytic (default) | empirical")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from symbreak.experiments.paper.diversity import PAPER_LABEL, diversity, paper_diversity, plot_diversity
    from symbreak.experiments.paper.report import markdown_table, write_outputs

    if args.tc not in ("gaussian", "exact"):
        raise ValueError(f"--tc: expected gaussian or exact, got {args.tc!r}")
    began = time.perf_counter()
    setup, seeds = prepare_from_args(args, blocks=5, moments=args.moments)
    result = diversity(setup, seeds, tc=args.tc, n_boot=200 if args.quick else 1000)
    seconds = time.perf_counter() - began
    result.config.update({"command": "diversity", "seconds": seconds})
    out = write_outputs(out_dir(args, "diversity"), "diversity", config=result.config,
                        results={**result.to_dict(), "seconds": seconds}, frames={"": result.shares},
                        figure=plot_diversity(result))
    cols = ["set", "nfe", "step", "entropy", "entropy_ci_low", "entropy_ci_high", "kl_to_train"]
    print(markdown_table(result.shares[cols].round(4)))
    print(f"{PAPER_LABEL}:")
    print(markdown_table(paper_diversity()))
    print(f"diversity on {args.data}: {len(seeds)} samples per set, {seconds:.1f} s; wrote {out}/diversity.*")
    return 0
