"""Writing results: every output lands whole or not at all, with its resolved configuration beside it."""
from __future__ import annotations

import json
from importlib import metadata
import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np


def to_jsonable(value: Any) -> Any:
    """numpy scalars/arrays, paths and NaN made JSON-safe (NaN and inf become null)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), indent=2, sort_keys=False, allow_nan=False)


@contextmanager
def staged_dir(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``out_dir``; on success its files move into ``out_dir``.

    On any exception the temporary folder is removed and ``out_dir`` is left as it was.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        out.mkdir(parents=True, exist_ok=True)
        for item in tmp.iterdir():
            os.replace(item, out / item.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then move the file to ``path``; nothing is left behind on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_json(path: str | os.PathLike, value: Any) -> Path:
    return atomic_write(path, lambda p: p.write_text(dumps(value) + "\n"))


def sidecar_path(path: str | os.PathLike) -> Path:
    """``x.npy`` -> ``x.config.json``: where an output's resolved configuration is saved."""
    path = Path(path)
    return path.with_name(path.stem + ".config.json")


def package_versions(names: tuple[str, ...], missing: str | None = "unknown") -> dict[str, str | None]:
    """Installed version of each package in ``names`` (``missing`` where it is not installed)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = missing
    return out
