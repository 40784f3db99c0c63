"""Shared fixtures of the command-line tests: one training cache for the whole session, and a runner
for the examples each command's --help shows."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from symbreak.experiments.cli import build_parser, main


@pytest.fixture(scope="session")
def cli_cache(tmp_path_factory) -> str:
    """One training cache for every command-line test (each network trains once per session)."""
    return str(tmp_path_factory.mktemp("cli-cache"))


def command_parsers() -> dict:
    """{command name: its argparse parser}."""
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return dict(sub.choices)


def help_examples(command: str) -> list[list[str]]:
    """The example command lines of ``symbreak COMMAND --help`` (description and epilog), as argv
    lists without the leading 'symbreak'."""
    parser = command_parsers()[command]
    text = "\n".join(t for t in (parser.description, parser.epilog) if t)
    lines = [line.split("#")[0].strip() for line in text.splitlines() if line.strip().startswith("symbreak ")]
    return [shlex.split(line)[1:] for line in lines]


def flags_of(command: str) -> set[str]:
    return {o for a in command_parsers()[command]._actions for o in a.option_strings}


def adapt(argv: list[str], tmp: Path, cache: str, extra: list[str] = ()) -> list[str]:
    """An example made test-sized: --out into ``tmp`` (same suffix; added where the example relies on the
    default output folder), --quick, --no-progress and the
    session cache where the command has them, plus ``extra`` flags."""
    flags = flags_of(argv[0])
    out = list(argv)
    if "--out" in out:
        i = out.index("--out") + 1
        out[i] = str(tmp / ("out" + Path(out[i]).suffix))
    elif argv[0] == "figures":  # never the default output folder, figures/ of the repository
        out += ["--out", str(tmp / "out")]
    for flag in ("--quick", "--no-progress"):
        if flag in flags and flag not in out:
            out.append(flag)
    if "--cache-dir" in flags:
        out += ["--cache-dir", cache]
    return out + list(extra)


def run_cli(capsys, argv: list[str]) -> str:
    """Run ``symbreak argv`` in-process; assert exit code 0 and, with --json, that stdout is exactly one
    JSON object; return stdout."""
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, f"{argv}: exit {code}\n{captured.err}"
    if "--json" in argv:
        document = json.loads(captured.out)
        assert isinstance(document, dict) and captured.out.strip().startswith("{")
    else:
        assert captured.out.strip(), f"{argv}: nothing on stdout"
    return captured.out


class Examples:
    """The helpers above, handed to tests as the ``examples`` fixture."""

    help_examples = staticmethod(help_examples)
    flags_of = staticmethod(flags_of)
    command_parsers = staticmethod(command_parsers)

    def __init__(self, capsys, tmp_path: Path, cache: str) -> None:
        self.capsys, self.tmp_path, self.cache = capsys, tmp_path, cache

    def run(self, argv: list[str], extra: list[str] = (), json_output: bool = False) -> str:
        """Run one example, test-sized (:func:`adapt`), optionally with --json."""
        tmp = self.tmp_path / f"run{len(list(self.tmp_path.iterdir()))}"
        tmp.mkdir()
        adapted = adapt(argv, tmp, self.cache, extra)
        if json_output and "--json" not in adapted:
            adapted.append("--json")
        return run_cli(self.capsys, adapted)


@pytest.fixture
def examples(capsys, tmp_path, cli_cache) -> Examples:
    return Examples(capsys, tmp_path, cli_cache)
