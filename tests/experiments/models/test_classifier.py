"""The frozen in-domain classifier: accuracy on digits, determinism, and its cache."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from symbreak.analysis.splits import split_indices
from symbreak.experiments.models.classifier import (
    CONFIG,
    WEIGHTS,
    cache_entry,
    load_or_train_classifier,
    train_classifier,
)

STEPS = 500  # quick training for tests; the default (1500) is slightly more accurate


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return d.data / 16.0, d.target


@pytest.fixture(scope="module")
def classifier(digits):
    x, labels = digits
    return train_classifier(x, labels, (8, 8), seed=0, dataset="digits", steps=STEPS)


def test_accuracy_on_held_out_digits(classifier, digits):
    x, labels = digits
    assert classifier.test_accuracy >= 0.9
    # recompute on the held-out split independently of the stored number
    _, test_idx = split_indices(len(x), labels, 0.2, seed=0)
    assert np.mean(classifier.predict(x[test_idx]) == labels[test_idx]) == pytest.approx(classifier.test_accuracy)
    assert classifier.config.num_classes == 10 and classifier.train_seconds > 0


def test_same_seed_same_features_other_seed_differs(classifier, digits):
    x, labels = digits
    again = train_classifier(x, labels, (8, 8), seed=0, dataset="digits", steps=STEPS)
    np.testing.assert_allclose(again.features(x[:200]), classifier.features(x[:200]), rtol=0, atol=1e-6)
    other = train_classifier(x, labels, (8, 8), seed=1, dataset="digits", steps=50)
    assert np.abs(other.features(x[:50]) - classifier.features(x[:50])).max() > 1e-2


def test_frozen_features_are_deterministic_and_shape_free(classifier, digits):
    x, _ = digits
    f = classifier.features(x[:300])
    assert f.shape == (300, 64) and f.dtype == np.float64
    np.testing.assert_array_equal(classifier.features(x[:300]), f)
    # image-shaped input, torch input and small batches give the same features
    images = torch.as_tensor(x[:300]).reshape(300, 8, 8)
    np.testing.assert_allclose(classifier.features(images, batch_size=7), f, rtol=1e-5, atol=1e-5)
    assert not any(p.requires_grad for p in classifier.net.parameters()) and not classifier.net.training
    # features feed the logits: argmax of head(features) is predict
    logits = classifier.net.head(torch.as_tensor(f, dtype=torch.float32))
    np.testing.assert_array_equal(logits.argmax(dim=1).numpy(), classifier.predict(x[:300]))


def test_bad_input_is_rejected(classifier, digits):
    x, labels = digits
    with pytest.raises(ValueError, match=r"x: expected shape \(N, 8, 8\) or \(N, 64\)"):
        classifier.features(np.zeros((3, 63)))
    with pytest.raises(ValueError, match="labels: expected 1797"):
        train_classifier(x, labels[:-1], (8, 8))
    with pytest.raises(ValueError, match="steps"):
        train_classifier(x, labels, (8, 8), steps=0)


def test_cache_round_trip_and_corrupt_entry(tmp_path, digits, monkeypatch):
    x, labels = digits
    x, labels = x[:600], labels[:600]
    first = load_or_train_classifier("digits", x, labels, (8, 8), seed=2, cache_dir=tmp_path, steps=100)
    entry = cache_entry(first.config, tmp_path)
    saved = json.loads((entry / CONFIG).read_text())
    assert saved["results"]["test_accuracy"] == first.test_accuracy and (entry / WEIGHTS).is_file()
    loaded = load_or_train_classifier("digits", x, labels, (8, 8), seed=2, cache_dir=tmp_path, steps=100)
    assert loaded.train_seconds == first.train_seconds  # read back, not retrained
    np.testing.assert_array_equal(loaded.features(x), first.features(x))
    (entry / WEIGHTS).write_bytes(b"not a state dict")
    with pytest.warns(RuntimeWarning, match="unusable; retraining"):
        rebuilt = load_or_train_classifier("digits", x, labels, (8, 8), seed=2, cache_dir=tmp_path, steps=100)
    np.testing.assert_allclose(rebuilt.features(x), first.features(x), atol=1e-6)
    assert torch.load(entry / WEIGHTS, weights_only=True).keys() == first.net.state_dict().keys()
    # another seed or other data get another entry; the environment variable picks the root
    other = train_classifier(x, labels, (8, 8), seed=3, steps=1, dataset="digits")
    assert cache_entry(other.config, tmp_path) != entry
    monkeypatch.setenv("SYMBREAK_CACHE", str(tmp_path / "env"))
    from_env = load_or_train_classifier("digits", x, labels, (8, 8), seed=2, steps=1)
    assert (cache_entry(from_env.config) / WEIGHTS).is_file()
    assert cache_entry(from_env.config).parent == tmp_path / "env" / "classifier"
