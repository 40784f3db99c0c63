"""The shared flags: defined once (cli.args), with the same defaults on every command that has them;
--json and the progress switch on every command; bad values exit 2 with one line naming the flag."""
from __future__ import annotations

import pytest

from symbreak.experiments.cli import COMMANDS, main
from symbreak.experiments.cli.args import DEFAULT_SCHEDULE, EVALUATION_SCHEDULE

from .conftest import command_parsers

SHARED = ("--data", "--schedule", "--device", "--seeds", "--cache-dir", "--retrain", "--out", "--quick", "--json",
          "--progress", "--no-progress")
EVALUATIONS = ("late-start", "gls-table", "diversity")
THEORY = ("critical-time", "fixed-points")


def actions(command: str) -> dict:
    return {o: a for a in command_parsers()[command]._actions for o in a.option_strings}


def test_every_command_has_json_and_progress():
    for name in COMMANDS:
        found = actions(name.replace("_", "-"))
        assert {"--json", "--progress", "--no-progress"} <= set(found), name
        assert found["--progress"].default is None and found["--json"].default is False


@pytest.mark.parametrize("flag", SHARED)
def test_shared_flag_has_one_definition(flag):
    found = {c: actions(c)[flag] for c in (n.replace("_", "-") for n in COMMANDS) if flag in actions(c)}
    assert found
    expected = {"--schedule": lambda c: EVALUATION_SCHEDULE if c in EVALUATIONS else DEFAULT_SCHEDULE,
                "--data": lambda c: "two-deltas" if c in THEORY else None}.get(flag)
    for command, action in found.items():
        default = expected(command) if expected else next(iter(found.values())).default
        assert action.default == default, (flag, command)
        first = next(iter(found.values()))
        assert (action.type, action.choices) == (first.type, first.choices), (flag, command)
    if flag == "--device":
        assert set(found) == {"validate", "train", "sample", "figures", "window", "critical-time", *EVALUATIONS}
        assert all(a.default == "auto" for a in found.values())


@pytest.mark.parametrize("command", ["validate", "train", "sample", "figures", *EVALUATIONS])
def test_bad_device_exits_2_before_any_work(capsys, tmp_path, command):
    required = {"sample": ["--data", "two-deltas", "--sampler", "ddim", "--steps", "2", "--out", str(tmp_path / "x.npy")],
                "figures": ["--out", str(tmp_path / "f")]}.get(command, ["--data", "two-deltas"])
    assert main([command, *required, "--device", "tpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--device: expected auto, cpu, cuda or cuda:N, got 'tpu'" in err
    assert list(tmp_path.iterdir()) == []


def test_choice_errors_are_one_line_naming_the_flag(capsys):
    assert main(["gls-table", "--data", "gmm-2d", "--tc", "median"]) == 2
    assert capsys.readouterr().err == ("symbreak gls-table: error: --tc: expected one of gaussian, exact; "
                                       "unknown name 'median'\n")
