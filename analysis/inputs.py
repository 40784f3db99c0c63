"""Reading input files: every problem with a file becomes one ``ValueError`` naming the file and what
was expected (the command line prints it as one line and exits with code 2).

Covered: a missing path, an empty or truncated ``.npy``/``.npz``, a file that is not in the format its
name says, object (pickled) arrays, several arrays in an ``.npz`` without a recognised data key, and
images that are corrupt, truncated or not images at all. Arrays are opened with a memory map where
possible (``.npy``), so large files are never read whole just to be checked.
"""
from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

DATA_KEYS = ("x", "data", "images", "arr_0")  # arr_0: np.savez(path, array)
LABEL_KEYS = ("y", "labels", "targets")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
ARRAY_SUFFIXES = (".npy", ".npz")
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, KeyError)


def _expect(path: Path, what: str, err: BaseException | None = None) -> ValueError:
    why = "" if err is None else f" ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no detail'})"
    return ValueError(f"{path}: {what}{why}")


def check_exists(path: str | os.PathLike, flag: str) -> Path:
    """``path`` as a Path, raising ``flag: PATH: no such file or folder`` when it is missing."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{flag}: {path}: no such file or folder")
    return path


def _numeric(path: Path, arr: NDArray, key: str | None = None) -> NDArray:
    where = path if key is None else f"{path}[{key}]"
    if arr.dtype.hasobject:
        raise ValueError(f"{where}: holds Python objects (dtype object), which are never unpickled; save a "
                         "numeric array (np.save of a float or integer array)")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
            or arr.dtype == np.bool_):
        raise ValueError(f"{where}: unsupported dtype {arr.dtype}; expected integer or float data")
    return arr


def _nonempty_file(path: str | os.PathLike, suffix: str, expected: str) -> Path:
    """``path`` as a Path, refused when it is a folder or an empty file."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, expected a {suffix} file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty; expected {expected}")
    return path


def read_npy(path: str | os.PathLike) -> NDArray:
    """The array of a ``.npy`` file, memory-mapped read-only (no pickles)."""
    path = _nonempty_file(path, ".npy", "a .npy array written by np.save")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err).lower() or "object" in str(err).lower():
            raise ValueError(f"{path}: holds Python objects (dtype object), which are never unpickled; save a "
                             "numeric array (np.save of a float or integer array)") from None
        raise _expect(path, "not a readable .npy array (truncated or not written by np.save?)", err) from None
    except _READ_ERRORS as err:
        raise _expect(path, "not a readable .npy array (truncated or not written by np.save?)", err) from None
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{path}: is an .npz archive, not a .npy array; rename it to .npz")
    return _numeric(path, arr)


def read_npz(path: str | os.PathLike) -> dict[str, NDArray]:
    """Every array of a ``.npz`` file (read whole, no pickles)."""
    path = _nonempty_file(path, ".npz", "a .npz archive written by np.savez")
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ValueError(f"{path}: is a .npy array, not a .npz archive; rename it to .npy")
        with npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as err:
        if "rename it" in str(err):
            raise
        raise _expect(path, "not a readable .npz archive (truncated or not written by np.savez?)", err) from None
    except _READ_ERRORS as err:
        if "pickle" in str(err).lower():
            raise ValueError(f"{path}: holds Python objects (dtype object), which are never unpickled; save "
                             "numeric arrays with np.savez") from None
        raise _expect(path, "not a readable .npz archive (truncated or not written by np.savez?)", err) from None
    if not arrays:
        raise ValueError(f"{path}: the .npz file holds no arrays")
    return {key: _numeric(path, arr, key) for key, arr in arrays.items()}


def npz_data_key(path: str | os.PathLike, arrays: dict[str, NDArray], labels: str | None = None) -> str:
    """The key of the data array of an ``.npz``: one of :data:`DATA_KEYS`, else its only array that is
    not a label array (:data:`LABEL_KEYS` or ``labels``). Several candidates are refused, not guessed."""
    key = next((k for k in DATA_KEYS if k in arrays), None)
    if key is not None:
        return key
    others = [k for k in arrays if k not in LABEL_KEYS and k != labels]
    if len(others) == 1:
        return others[0]
    raise ValueError(f"{path}: holds arrays {', '.join(arrays)} and none is named {', '.join(DATA_KEYS)}; "
                     "name the data array x (np.savez(path, x=..., y=labels))")


def read_array(path: str | os.PathLike, flag: str = "--data") -> tuple[NDArray, str | None]:
    """(array, npz key or None) of a ``.npy`` or ``.npz`` file; any other file is refused."""
    path = check_exists(path, flag)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return read_npy(path), None
    if suffix == ".npz":
        arrays = read_npz(path)
        key = npz_data_key(path, arrays)
        return arrays[key], key
    raise ValueError(f"{flag}: {path}: unsupported file type {path.suffix!r}; accepted: .npy or .npz")


@dataclass(frozen=True)
class ImageHead:
    """What an image file says about itself before its pixels are decoded."""

    path: Path
    size: tuple[int, int]
    mode: str


def image_files(folder: Path) -> list[Path]:
    """The PNG/JPEG files of ``folder`` in sorted order (other files are ignored)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{folder}: the folder contains no PNG/JPEG images")
    return files


def image_head(path: Path) -> ImageHead:
    """Size and mode of an image, refusing files that are not readable images."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return ImageHead(path, im.size, im.mode)
    except (UnidentifiedImageError, OSError, ValueError, EOFError, SyntaxError) as err:
        raise _expect(path, "not a readable PNG/JPEG image", err) from None


def read_image(path: Path, mode: str) -> NDArray[np.uint8]:
    """The pixels of an image converted to ``mode`` (``L`` or ``RGB``), refusing corrupt or truncated
    files and modes of more than 8 bits."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode in ("I", "I;16", "F"):
                raise ValueError(f"{path}: unsupported image mode {im.mode} (only 8-bit grey or colour images)")
            im.load()
            return np.asarray(im.convert(mode))
    except (UnidentifiedImageError, OSError, EOFError, SyntaxError) as err:
        raise _expect(path, "corrupt or truncated image", err) from None
