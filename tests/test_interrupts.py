"""Outputs land whole or not at all: a command killed with SIGKILL at a random moment leaves either the
old files or the whole new set, and the next run cleans what the killed one left; a commit that fails
half-way rolls back."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from symbreak.analysis import io
from symbreak.analysis.io import clean_stale, staged_dir

ENTRY = "import sys; from symbreak.experiments.cli import main; sys.exit(main())"
COMMAND = [sys.executable, "-c", ENTRY, "critical-time", "--data", "digits", "--method",
           "gaussian", "--max-points", "300"]
NAMES = {"critical_time.csv", "critical_time.png", "critical_time.pdf", "critical_time.config.json",
         "critical_time.soft_direction.npy"}


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_sigkill_at_random_moments_then_a_clean_run(tmp_path):
    out, rng = tmp_path / "o", random.Random(7)
    for _ in range(5):
        proc = subprocess.Popen([*COMMAND, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        files = {p.name for p in out.iterdir()} if out.exists() else set()
        assert files in (set(), NAMES), files  # never a partial set
    done = subprocess.run([*COMMAND, "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert {p.name for p in out.iterdir()} == NAMES
    assert _leftovers(tmp_path) == []


def _old_state(out: Path) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "a.txt").write_text("old a")
    (out / "keep.txt").write_text("untouched")
    return {p.name: p.read_text() for p in out.iterdir()}


def test_failed_commit_rolls_back_to_the_old_files(tmp_path, monkeypatch):
    out = tmp_path / "o"
    old = _old_state(out)
    real, calls = os.replace, []

    def failing(src, dst):
        calls.append(dst)
        if len(calls) == 4:  # after a.txt went aside and one new file went in
            raise OSError(28, "No space left on device")
        return real(src, dst)
    monkeypatch.setattr(io.os, "replace", failing)
    with pytest.raises(OSError), staged_dir(out) as tmp:
        for name in ("a.txt", "b.txt", "c.txt"):
            (tmp / name).write_text("new " + name)
    monkeypatch.setattr(io.os, "replace", real)
    assert {p.name: p.read_text() for p in out.iterdir()} == old
    assert _leftovers(tmp_path) == []


def test_an_unfinished_commit_of_a_dead_process_is_rolled_back(tmp_path):
    out = tmp_path / "o"
    old = _old_state(out)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    backup = tmp_path / f".o.backup-{dead}-abcd1234"
    backup.mkdir()
    (backup / "manifest.json").write_text(json.dumps({"names": ["a.txt", "b.txt"], "placed": ["a.txt", "b.txt"]}))
    os.replace(out / "a.txt", backup / "a.txt")          # killed after moving a.txt aside ...
    (out / "a.txt").write_text("new a")                   # ... and placing the new a.txt and b.txt
    (out / "b.txt").write_text("new b")
    stage = tmp_path / f".o.stage-{dead}-abcd1234"
    stage.mkdir()
    (stage / "x").write_text("half-written")
    cleaned = clean_stale(out)
    assert {p.name for p in cleaned} == {backup.name, stage.name}
    assert {p.name: p.read_text() for p in out.iterdir()} == old
    assert _leftovers(tmp_path) == []


def test_commit_removes_named_stale_outputs_and_refuses_folders(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "x.trajectory.npy").write_text("stale")
    with staged_dir(out, remove=("x.trajectory.npy",)) as tmp:
        np.save(tmp / "x.npy", np.zeros(3))
    assert sorted(p.name for p in out.iterdir()) == ["x.npy"]
    (out / "y.npy").mkdir()
    with pytest.raises(ValueError, match="is a folder"), staged_dir(out) as tmp:
        np.save(tmp / "y.npy", np.zeros(3))
    assert sorted(p.name for p in out.iterdir()) == ["x.npy", "y.npy"] and (out / "y.npy").is_dir()
    assert _leftovers(tmp_path) == []


def test_a_probe_left_by_a_killed_run_is_removed_by_the_next_check(tmp_path):
    """A run killed between creating and removing its writability probe leaves .symbreak-probe-<pid>-*;
    the next output check removes probes of dead processes (and keeps nothing of its own)."""
    from symbreak.analysis.io import check_output_dir

    dead = tmp_path / ".symbreak-probe-999999999-abc"  # no such pid
    dead.mkdir()
    check_output_dir(tmp_path / "o")
    assert list(tmp_path.iterdir()) == []
