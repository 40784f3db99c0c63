"""Bad input across the commands, table-driven: each row must exit with code 2, print one line on stderr
(no traceback) and write nothing (or leave the previous outputs as they were).

Nothing here trains a network: the rows fail on their input before any work starts.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from symbreak.experiments.cli import main

SAMPLE = ["sample", "--data", "two-deltas", "--sampler", "ddim", "--steps", "3", "--denoiser", "exact"]


def _bad_files(root: Path) -> None:
    """Every kind of damaged input file, once."""
    from PIL import Image

    (root / "empty.npy").write_bytes(b"")
    np.save(root / "good.npy", np.random.default_rng(0).normal(size=(50, 2)))
    (root / "trunc.npy").write_bytes((root / "good.npy").read_bytes()[:200])
    np.save(root / "obj.npy", np.array([{}, 1], dtype=object), allow_pickle=True)
    np.save(root / "nan.npy", np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 4.0]]))
    np.save(root / "one.npy", np.zeros((1, 2)))
    np.save(root / "strings.npy", np.array(["a", "b"]))
    (root / "text.npy").write_text("not an array\n")
    np.savez(root / "good.npz", x=np.zeros((10, 2)))
    (root / "trunc.npz").write_bytes((root / "good.npz").read_bytes()[:100])
    (root / "empty.npz").write_bytes(b"")
    np.savez(root / "multi.npz", a=np.zeros((10, 2)), b=np.ones((10, 2)))
    with zipfile.ZipFile(root / "nothing.npz", "w"):
        pass
    np.save(root / "npy_as.npz", np.zeros((10, 2)))
    os.replace(root / "npy_as.npz.npy", root / "npy_as.npz")
    (root / "data.csv").write_text("1,2\n3,4\n")
    (root / "folder.npy").mkdir()
    for name, writer in (("truncated", lambda p, png: p.write_bytes(png)),
                         ("notimage", lambda p, png: p.write_text("hello")),
                         ("corrupt", lambda p, png: p.write_bytes(png[:8] + b"\0" * len(png)))):
        folder = root / f"images_{name}"
        folder.mkdir()
        for i in range(3):
            pixels = np.random.default_rng(i).integers(0, 256, (32, 32), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
        png = (folder / "0.png").read_bytes()
        writer(folder / "1.png", png[:len(png) // 2])
    (root / "images_empty").mkdir()
    (root / "images_empty" / "readme.txt").write_text("no images")
    (root / "a_file").write_text("x")
    (root / "out_with_folder").mkdir()
    (root / "out_with_folder" / "critical_time.pdf").mkdir()
    (root / "out_with_folder" / "critical_time.csv").write_text("previous\n")


DATA_FILES = ["empty.npy", "trunc.npy", "obj.npy", "nan.npy", "one.npy", "strings.npy", "text.npy", "trunc.npz",
              "empty.npz", "multi.npz", "nothing.npz", "npy_as.npz", "data.csv", "folder.npy", "missing.npy",
              "images_truncated", "images_notimage", "images_corrupt", "images_empty"]

ROWS: list[tuple[str, list[str]]] = [
    *[(f"critical-time {f}", ["critical-time", "--data", "{d}/" + f, "--method", "gaussian", "--out", "{o}"])
      for f in DATA_FILES],
    *[(f"train {f}", ["train", "--data", "{d}/" + f, "--cache-dir", "{o}"]) for f in DATA_FILES[:12]],
    *[(f"sample init {f}", [*SAMPLE, "--t-start", "0.5", "--init", "{d}/" + f,
                            "--out", "{o}/x.npy"]) for f in ("empty.npy", "trunc.npy", "obj.npy", "text.npy")],
    ("sample seeds negative", [*SAMPLE, "--seeds=-3", "--out", "{o}/x.npy"]),
    ("sample seeds typo range", [*SAMPLE, "--seeds", "0-99999999999", "--out", "{o}/x.npy"]),
    ("sample seeds empty range", [*SAMPLE, "--seeds", "5-1", "--out", "{o}/x.npy"]),
    ("sample seeds repeated", [*SAMPLE, "--seeds", "1,1", "--out", "{o}/x.npy"]),
    ("sample seeds word", [*SAMPLE, "--seeds", "a-b", "--out", "{o}/x.npy"]),
    ("sample steps huge", [*SAMPLE[:-4], "--steps", "500000000", "--denoiser", "exact", "--out", "{o}/x.npy"]),
    ("sample out is a folder", [*SAMPLE, "--out", "{d}/out_with_folder"]),
    ("sample out not npy", [*SAMPLE, "--out", "{o}/x.csv"]),
    ("sample out under a file", [*SAMPLE, "--out", "{d}/a_file/x.npy"]),
    ("sample moments without gls", [*SAMPLE, "--moments", "empirical", "--out", "{o}/x.npy"]),
    ("sample retrain with exact", [*SAMPLE, "--retrain", "--out", "{o}/x.npy"]),
    ("sample out file is a folder", [*SAMPLE, "--out", "{d}/folder.npy"]),
    ("sample cache-dir is a file", [*SAMPLE[:-2], "--denoiser", "network", "--cache-dir", "{d}/a_file",
                                    "--out", "{o}/x.npy"]),
    ("late-start points huge", ["late-start", "--data", "digits", "--quick", "--points", "100000000", "--out", "{o}"]),
    ("validate n-points huge", ["validate", "--data", "two-deltas", "--n-points", "1000000000", "--out", "{o}"]),
    ("diversity retrain with exact", ["diversity", "--data", "digits", "--denoiser", "exact", "--retrain",
                                      "--out", "{o}"]),
    ("gls-table cache-dir is a file", ["gls-table", "--data", "digits", "--quick", "--cache-dir", "{d}/a_file",
                                       "--out", "{o}"]),
    ("train steps huge", ["train", "--data", "two-deltas", "--steps", "1000000000", "--cache-dir", "{o}"]),
    ("train steps zero", ["train", "--data", "two-deltas", "--steps", "0", "--cache-dir", "{o}"]),
    ("train lr negative", ["train", "--data", "two-deltas", "--lr", "-1", "--cache-dir", "{o}"]),
    ("train cache-dir is a file", ["train", "--data", "two-deltas", "--cache-dir", "{d}/a_file"]),
    ("train cache-dir under a file", ["train", "--data", "two-deltas", "--cache-dir", "{d}/a_file/cache"]),
    ("fixed-points t zero", ["fixed-points", "--t", "0"]),
    ("fixed-points t above T", ["fixed-points", "--t", "2"]),
    ("fixed-points t nan", ["fixed-points", "--t", "nan"]),
    ("fixed-points m huge", ["fixed-points", "--t", "0.5", "--m", "1e200"]),
    ("fixed-points m negative", ["fixed-points", "--t", "0.5", "--m", "-1"]),
    ("fixed-points n-steps huge", ["fixed-points", "--t", "0.5", "--schedule", "ddpm", "--n-steps", "1000000000"]),
    ("fixed-points alpha one", ["fixed-points", "--alpha", "1"]),
    ("critical-time out is a file", ["critical-time", "--data", "{d}/good.npy", "--out", "{d}/a_file"]),
    ("critical-time out under a file", ["critical-time", "--data", "{d}/good.npy", "--out", "{d}/a_file/o"]),
    ("critical-time out name is a folder", ["critical-time", "--data", "{d}/good.npy", "--method", "gaussian",
                                            "--out", "{d}/out_with_folder"]),
    ("critical-time n-steps huge", ["critical-time", "--schedule", "ddpm", "--n-steps", "99999999"]),
    ("critical-time unknown data", ["critical-time", "--data", "no-such-set"]),
    ("diversity seeds typo", ["diversity", "--data", "digits", "--denoiser", "exact", "--seeds", "0-99999999999",
                              "--out", "{o}"]),
    ("late-start out is a file", ["late-start", "--data", "digits", "--quick", "--out", "{d}/a_file"]),
    ("gls-table out is a file", ["gls-table", "--data", "digits", "--quick", "--out", "{d}/a_file"]),
    ("validate out is a file", ["validate", "--data", "two-deltas", "--quick", "--out", "{d}/a_file"]),
    ("figures bad device", ["figures", "--only", "1,4", "--quick", "--device", "tpu", "--out", "{o}"]),
    ("figures out is a file", ["figures", "--only", "1", "--quick", "--out", "{d}/a_file"]),
]


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad")
    _bad_files(root)
    return root


def _state(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def test_the_table_is_large_enough():
    assert len(ROWS) >= 60 and len({name for name, _ in ROWS}) == len(ROWS)


@pytest.mark.parametrize("argv", [argv for _, argv in ROWS], ids=[name for name, _ in ROWS])
def test_bad_input_exits_2_with_one_line(argv, bad_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SYMBREAK_CACHE", str(tmp_path / "default-cache"))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    before = _state(bad_dir)
    code = main([a.format(d=bad_dir, o=out) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))
    assert _state(bad_dir) == before
    assert not (tmp_path / "default-cache").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "out") == []


def test_diverged_training_exits_1_and_caches_nothing(tmp_path, capsys):
    np.save(tmp_path / "huge.npy", np.random.default_rng(0).normal(size=(64, 2)) * 1e30)
    cache = tmp_path / "cache"
    argv = ["train", "--data", str(tmp_path / "huge.npy"), "--precondition", "none", "--steps", "5",
            "--cache-dir", str(cache), "--no-progress"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "diverged" in err[0] and "step" in err[0] and "--lr" in err[0], err
    assert not list(cache.rglob("weights.pt")) and not list(cache.rglob("config.json"))


def test_fixed_points_at_the_smallest_times_stay_finite(capsys):
    import json

    for t in ("1e-300", "1e-170", "5e-324"):
        assert main(["fixed-points", "--t", t, "--json"]) == 0
        text = capsys.readouterr().out
        assert "Infinity" not in text and "NaN" not in text and json.loads(text)
