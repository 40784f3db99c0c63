"""Writing results: every output lands whole or not at all, with its resolved configuration and its
provenance beside it.

Commit protocol (:func:`staged_dir`, used by :func:`symbreak.experiments.output.save` and every other
writer). The files of one run are written into a staging folder ``.<out>.stage-<pid>-<random>`` beside
the output folder (same file system). Only when all were written does the commit start:

1. a backup folder ``.<out>.backup-<pid>-<random>`` receives a ``manifest.json`` listing every name the
   commit will place or remove;
2. each existing target of those names is renamed aside into the backup folder, then each staged file
   is renamed into the output folder;
3. on success the backup folder is renamed to ``.<out>.trash-<pid>-<random>`` (one atomic rename: the
   commit point) and deleted.

A failure in step 2 moves everything back, so the folder holds exactly its old files. A run killed
(SIGKILL) before step 3 leaves a backup folder with a manifest and a dead pid: the next write beside the
same folder (:func:`clean_stale`) rolls it back to the old state; stale staging and trash folders
(dead pid, or older than :data:`STALE_SECONDS`) are deleted. Either the old state or the whole new
one is left behind.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import numpy as np

STALE_SECONDS = 600          # a staging folder this old is abandoned even if its pid is alive (pid reuse)
HASH_LIMIT = 256 << 20       # files above 256 MiB are fingerprinted by size + mtime instead of sha256
MANIFEST = "manifest.json"
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<kind>stage|backup|trash)-(?P<pid>\d+)-[0-9a-f]+$")
PROVENANCE_PACKAGES = ("symbreak", "numpy", "scipy", "torch", "scikit-learn", "POT", "pillow")


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


# --- checking an output location before any work ---------------------------------------------------
def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


_PROBE = re.compile(r"^\.symbreak-probe-(?P<pid>\d+)-")


def _probe_writable(folder: Path, flag: str, shown: Path) -> None:
    """Create and remove a hidden folder in ``folder``: the staging folder must be possible there. The
    probe carries the pid, and probes of dead processes (killed between the two steps) are removed."""
    for old in folder.glob(".symbreak-probe-*"):
        match = _PROBE.match(old.name)
        if match and not _pid_alive(int(match["pid"])):
            shutil.rmtree(old, ignore_errors=True)
    try:
        os.rmdir(tempfile.mkdtemp(prefix=f".symbreak-probe-{os.getpid()}-", dir=folder))
    except OSError as err:
        raise ValueError(f"{flag}: cannot write into {shown} ({err.strerror or err}); choose a writable "
                         "folder") from None


def check_output_dir(out_dir: str | os.PathLike, names: Iterable[str] = (), flag: str = "--out") -> Path:
    """Refuse, before any work, an output folder the run could not commit into: ``out_dir`` a file, a
    parent that is a file, a folder that is not writable, or a name of ``names`` that is a folder there.
    Nothing is created (a writability probe is removed again)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{flag}: {out} exists and is not a folder; give a folder (it is created if missing)")
    base = _existing_ancestor(out)
    if not base.is_dir():
        raise ValueError(f"{flag}: {base} is a file, so {out} cannot be created; give a folder path")
    _probe_writable(base, flag, base)
    if out.exists() and out.resolve() != base.resolve():
        _probe_writable(out, flag, out)
    for name in names:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            raise ValueError(f"{flag}: {target} is a folder; the output file {name} cannot replace it "
                             "(remove or rename it, or choose another --out)")
    return out


# --- stale temporaries -----------------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(path: Path, pid: int) -> bool:
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return False
    return not _pid_alive(pid) or (pid != os.getpid() and age > STALE_SECONDS)


def _roll_back(backup: Path, out: Path) -> None:
    """Undo a commit that did not finish: remove what it placed, put back what it moved aside."""
    manifest = json.loads((backup / MANIFEST).read_text())
    for name in manifest["names"]:
        saved, target = backup / name, out / name
        if saved.exists() or saved.is_symlink():
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(saved, target)
        elif name in manifest["placed"] and (target.exists() or target.is_symlink()):
            target.unlink()


def clean_stale(out_dir: str | os.PathLike) -> list[Path]:
    """Remove the staging/trash folders of dead (or long-abandoned) runs beside ``out_dir`` and roll back
    their unfinished commits; returns what was cleaned."""
    out = Path(out_dir)
    parent = out.parent if str(out.parent) else Path(".")
    cleaned = []
    if not parent.is_dir():
        return cleaned
    for item in parent.iterdir():
        match = _TEMP.match(item.name)
        if not match or match["name"] != out.name or not item.is_dir() or not _is_stale(item, int(match["pid"])):
            continue
        if match["kind"] == "backup" and (item / MANIFEST).exists() and out.is_dir():
            try:
                _roll_back(item, out)
            except (OSError, ValueError, KeyError):
                continue  # leave it for a person to look at rather than lose the old files
        shutil.rmtree(item, ignore_errors=True)
        cleaned.append(item)
    return cleaned


# --- the commit ------------------------------------------------------------------------------------
def _temp_folder(out: Path, kind: str) -> Path:
    path = out.parent / f".{out.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"
    path.mkdir()
    return path


def _commit(tmp: Path, out: Path, remove: Iterable[str]) -> None:
    """Move the staged files of ``tmp`` into ``out`` (and take the ``remove`` names away) as described in
    the module docstring: all of them or, on failure, none."""
    staged = sorted(p.name for p in tmp.iterdir())
    gone = [n for n in dict.fromkeys(remove) if n not in staged and ((out / n).exists() or (out / n).is_symlink())]
    for name in staged:
        if (out / name).is_dir() and not (out / name).is_symlink():
            raise ValueError(f"--out: {out / name} is a folder; the output file {name} cannot replace it")
    backup = _temp_folder(out, "backup")
    (backup / MANIFEST).write_text(json.dumps({"names": staged + gone, "placed": staged}))
    placed: list[str] = []
    try:
        for name in staged + gone:
            if (out / name).exists() or (out / name).is_symlink():
                os.replace(out / name, backup / name)
        for name in staged:
            os.replace(tmp / name, out / name)
            placed.append(name)
    except BaseException:
        for name in placed:
            os.replace(out / name, tmp / name)
        for name in staged + gone:
            if (backup / name).exists() or (backup / name).is_symlink():
                os.replace(backup / name, out / name)
        shutil.rmtree(backup, ignore_errors=True)
        raise
    trash = backup.with_name(backup.name.replace(".backup-", ".trash-", 1))
    os.replace(backup, trash)  # the commit point
    shutil.rmtree(trash, ignore_errors=True)


@contextmanager
def staged_dir(out_dir: str | os.PathLike, remove: Iterable[str] = (), flag: str = "--out") -> Iterator[Path]:
    """Yield a staging folder beside ``out_dir``; on success its files are committed into ``out_dir``
    all at once (module docstring) and the ``remove`` names (stale outputs of an earlier run that this
    run does not write) are taken away in the same commit.

    On any exception the staging folder is removed and ``out_dir`` is left as it was; ``flag`` names
    the option in the ValueError of an output folder that cannot be written.
    """
    out = Path(out_dir).absolute()
    check_output_dir(out, (), flag)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out)
    tmp = _temp_folder(out, "stage")
    try:
        yield tmp
        out.mkdir(parents=True, exist_ok=True)
        _commit(tmp, out, remove)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then move the file to ``path``; nothing is left behind on failure.

    A folder in the way of ``path`` (the remains of a damaged cache entry) is removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def clean_atomic_leftovers(folder: str | os.PathLike, name: str) -> list[Path]:
    """Remove the temporaries ``.<name>.<pid>.XXXX<suffix>`` of :func:`atomic_write` left in ``folder``
    by killed processes (dead pid, or older than :data:`STALE_SECONDS`)."""
    pattern = re.compile(rf"^\.{re.escape(name)}\.(\d+)\.")
    removed = []
    for item in Path(folder).iterdir() if Path(folder).is_dir() else ():
        match = pattern.match(item.name)
        if match and item.is_file() and _is_stale(item, int(match[1])):
            item.unlink(missing_ok=True)
            removed.append(item)
    return removed


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


# --- provenance ------------------------------------------------------------------------------------
def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_fingerprint(path: str | os.PathLike) -> dict:
    """What identifies an input file (or folder of files): its sha256, or for more than
    :data:`HASH_LIMIT` bytes its size and modification time (hashing would cost more than the run)."""
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    size = sum(p.stat().st_size for p in files)
    out: dict[str, Any] = {"path": str(path.resolve()), "bytes": size}
    if size > HASH_LIMIT:
        return {**out, "mtime": max(p.stat().st_mtime for p in files), "sha256": None}
    if path.is_dir():
        h = hashlib.sha256()
        for p in files:
            h.update(p.name.encode() + b"\0" + bytes.fromhex(sha256_file(p)))
        return {**out, "files": len(files), "sha256": h.hexdigest()}
    return {**out, "sha256": sha256_file(path)}


def provenance(config: dict, data_files: Iterable[str | os.PathLike | None] = (), model: dict | None = None) -> dict:
    """Everything needed to trace an output: the resolved ``config``, a fingerprint of every input file
    (:func:`file_fingerprint`; built-in data sets need none), the trained ``model`` (cache key, weights
    sha256, training configuration) when one was used, and the Python and package versions."""
    files = [file_fingerprint(p) for p in data_files if p is not None and Path(p).exists()]
    return {**config, "provenance": {"data_files": files, "model": model, "python": platform.python_version(),
                                     "versions": package_versions(PROVENANCE_PACKAGES, missing=None)}}
