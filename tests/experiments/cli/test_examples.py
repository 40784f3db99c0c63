"""Every example of every command's --help runs, in process and test-sized: --quick, --no-progress,
outputs under tmp_path, one training cache per session; the first example of each command also runs
with --json and must print exactly one JSON object on stdout. Examples that would take over ~20 s even
with --quick get size-reducing flags (``EXTRA``); the few still slower run under the slow marker
(``SLOW``)."""
from __future__ import annotations

import pytest

from symbreak.experiments.cli import COMMANDS

from .conftest import help_examples

EXTRA = {  # command -> (a word the example contains, flags added to keep the run to a few seconds)
    "critical-time": ("digits", ["--max-points", "100"]),  # the exact route of digits on a 100-point subset
    "validate": ("--data", ["--n-points", "7", "--t-min", "0.2"]),  # 7 logsnr points from T down to t = 0.2
    "sample": ("--data", ["--seeds", "0-7"]),              # 8 samples where the example draws the default 64
    "gls-table": ("--data", ["--seeds", "0-59"]),          # one seed block of 60 instead of two
    "figures": ("figures", ["--only", "1"]),               # `symbreak figures` makes every figure: figure 1
}
SLOW = {("validate", "digits"), ("validate", "gmm-2d")}   # the network branch of a 64-d / 2-d net: ~30 s each


def extra_flags(command: str, argv: list[str]) -> list[str]:
    word, flags = EXTRA.get(command, (None, []))
    return flags if word in argv and flags[0] not in argv else []


def cases() -> list:
    out = []
    for name in COMMANDS:
        command = name.replace("_", "-")
        found = help_examples(command)
        for i, argv in enumerate(found):
            if "--quick" in argv and [a for a in argv if a != "--quick"][:3] in [f[:3] for f in found[:i]]:
                continue  # the same example without --quick already runs under --quick
            marks = [pytest.mark.slow] if any((command, word) in SLOW for word in argv) else []
            out.append(pytest.param(command, i, argv, marks=marks, id=f"{command}-{i}"))
    return out


def test_every_command_shows_examples():
    assert all(help_examples(name.replace("_", "-")) for name in COMMANDS)


@pytest.mark.parametrize("command, index, argv", cases())
def test_help_example_runs(examples, command, index, argv):
    examples.run(argv, extra_flags(command, argv), json_output=index == 0)
