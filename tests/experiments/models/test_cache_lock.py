"""The training cache under concurrency and damage: one configuration trains once when two runs ask for
it at the same time; leftovers of killed writers are removed; a damaged entry is rebuilt; a diverged
run is never cached."""
from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from symbreak.analysis.datasets import load_dataset
from symbreak.experiments.models import training
from symbreak.experiments.models.networks import MLPConfig
from symbreak.experiments.models.training import TrainConfig, TrainingDiverged, load_or_train_model
from symbreak.theory import VPLinear

TINY = TrainConfig(MLPConfig(dim=1, width=8, depth=1), steps=20, batch_size=8, warmup_steps=2)


@pytest.fixture()
def count_training(monkeypatch):
    calls = []
    real = training.train

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(training, "train", counting)
    return calls


def test_concurrent_runs_of_one_configuration_train_once(tmp_path, count_training):
    data = load_dataset("two-deltas", n=64)
    results, errors = [], []

    def run():
        try:
            results.append(load_or_train_model(data, VPLinear(), TINY, device="cpu", cache_dir=tmp_path))
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)
    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(count_training) == 1
    assert sorted(r.from_cache for r in results) == [False, True, True]


def test_leftovers_are_cleaned_and_a_folder_in_place_of_the_weights_is_rebuilt(tmp_path, count_training):
    data = load_dataset("two-deltas", n=64)
    first = load_or_train_model(data, VPLinear(), TINY, device="cpu", cache_dir=tmp_path)
    dead = 2 ** 22 + 12345  # above the default pid_max: no such process
    leftover = first.path / f".weights.pt.{dead}.abcd.pt"
    leftover.write_bytes(b"half")
    (first.path / "weights.pt").unlink()
    (first.path / "weights.pt").mkdir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = load_or_train_model(data, VPLinear(), TINY, device="cpu", cache_dir=tmp_path)
    assert any("corrupt" in str(w.message) for w in caught)
    assert not again.from_cache and (again.path / "weights.pt").is_file() and not leftover.exists()
    third = load_or_train_model(data, VPLinear(), TINY, device="cpu", cache_dir=tmp_path)
    assert third.from_cache and len(count_training) == 2
    record = third.provenance()
    assert record["cache_key"] == third.key and len(record["weights_sha256"]) == 64


def test_diverged_training_is_refused_and_not_cached(tmp_path):
    np.save(tmp_path / "huge.npy", np.random.default_rng(0).normal(size=(64, 2)) * 1e30)
    data = load_dataset(str(tmp_path / "huge.npy"))
    config = TrainConfig(MLPConfig(dim=2, width=8, depth=1), steps=5, batch_size=8, warmup_steps=1)
    with pytest.raises(TrainingDiverged, match=r"step \d+"):
        load_or_train_model(data, VPLinear(), config, device="cpu", cache_dir=tmp_path / "cache")
    assert not list(Path(tmp_path / "cache").rglob("config.json"))
