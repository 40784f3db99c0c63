"""Several processes: seed splitting, and a real 2-process torchrun run on CPU with the gloo backend."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from symbreak.experiments.runtime.distributed import DistContext, gather, map_seeds, rank_seeds, split_seeds


def per_seed(seeds: list[int]) -> np.ndarray:
    """A stand-in sampler: three normals from a generator seeded by each sample's seed."""
    return np.stack([torch.randn(3, generator=torch.Generator().manual_seed(s)).numpy() for s in seeds])


@pytest.mark.parametrize("world", [1, 2, 3, 5])
@pytest.mark.parametrize("n", [0, 1, 4, 11])
def test_split_seeds_is_a_contiguous_balanced_partition(world, n):
    seeds = list(range(100, 100 + n))
    chunks = [split_seeds(seeds, r, world) for r in range(world)]
    assert sum(chunks, []) == seeds
    sizes = [len(c) for c in chunks]
    assert max(sizes) - min(sizes) <= 1


def test_split_seeds_checks_the_rank():
    with pytest.raises(ValueError, match="rank"):
        split_seeds([1, 2], 2, 2)


def test_one_process_is_the_identity():
    seeds = [5, 3, 9]
    np.testing.assert_array_equal(map_seeds(per_seed, seeds), per_seed(seeds))
    assert gather([1, 2], DistContext()) == [1, 2]
    assert rank_seeds(0, 0) != rank_seeds(0, 1) and rank_seeds(4, 1) == rank_seeds(4, 1)


SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import numpy as np, torch
    from symbreak.analysis.datasets import load_dataset
    from symbreak.experiments.runtime.distributed import init_distributed, map_seeds
    from symbreak.experiments.models.networks import MLPConfig
    from symbreak.experiments.models.training import TrainConfig, init_network, load_or_train_model
    from symbreak.theory import VPLinear

    out = Path(sys.argv[1])
    ctx = init_distributed("cpu")
    cfg = TrainConfig(MLPConfig(dim=1, width=16, depth=1), steps=40, batch_size=64, lr=1e-2, seed=7)
    model = load_or_train_model(load_dataset("two-deltas"), VPLinear(), cfg, device="cpu", cache_dir=out / "cache")
    torch.save({"ema": model.denoiser.net.state_dict(), "init": init_network(cfg.network, 7).state_dict()},
               out / f"rank{ctx.rank}.pt")
    samples = map_seeds(lambda seeds: np.stack([torch.randn(3, generator=torch.Generator().manual_seed(s)).numpy()
                                                for s in seeds]), list(range(20, 27)))
    np.save(out / f"seeds{ctx.rank}.npy", samples)
    (out / f"meta{ctx.rank}.json").write_text(json.dumps({"world": ctx.world_size, "path": str(model.path)}))
""")


def test_two_process_torchrun_trains_identical_weights_and_gathers_in_order(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metas = [json.loads((tmp_path / f"meta{r}.json").read_text()) for r in (0, 1)]
    assert [m["world"] for m in metas] == [2, 2] and metas[0]["path"] == metas[1]["path"]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for name, value in ranks[0]["ema"].items():
        assert torch.equal(value, ranks[1]["ema"][name]), name  # DDP kept the ranks in step
    moved = max((ranks[0]["ema"][k] - ranks[0]["init"][k]).abs().max().item() for k in ranks[0]["init"])
    assert moved > 1e-3  # and they did train
    entries = list((tmp_path / "cache").iterdir())
    files = {p.name for p in entries[0].iterdir()}
    assert len(entries) == 1 and files - {".lock"} == {"weights.pt", "config.json"}  # .lock: the cache lock
    cached = torch.load(entries[0] / "weights.pt", weights_only=True)
    assert all(torch.equal(cached[k], ranks[0]["ema"][k]) for k in cached)  # rank 0 wrote what all hold
    expected = per_seed(list(range(20, 27)))
    for r in (0, 1):
        np.testing.assert_array_equal(np.load(tmp_path / f"seeds{r}.npy"), expected)
