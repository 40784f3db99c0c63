"""benchmarks/cuda_check.py --model --small on the CPU: the --model checks run and pass on a tiny UNet."""
import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("diffusers")
SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "cuda_check.py"


def test_model_checks_small_cpu(capsys):
    spec = importlib.util.spec_from_file_location("cuda_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    code = module.main(["--device", "cpu", "--model", "--small", "--batch", "4", "--ddim-steps", "3",
                        "--lanczos-iter", "6"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "DDIM-3 x4" in out and "Lanczos top-2" in out and "2/2 checks passed" in out
