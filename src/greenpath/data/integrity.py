"""Integrity checks for raw dataset files, and quarantine of bad ones.

A corrupt download (pytorch/vision#8338, an HTML page
saved in place of an archive): before a dataset is loaded, every known raw
file that is present is checked for

* an HTML page saved in its place (first bytes ``<!DOCTYPE html`` or ``<html``),
* an MD5 mismatch, where the expected MD5 is known (torchvision's class attributes),
* a broken container: truncated gzip (CRC/length), unreadable tar or zip, unreadable npz,
  an IDX file (MNIST layout) whose size does not match its header.

A bad file is moved to ``<data_root>/quarantine/<file name>.<UTC timestamp>`` and a
:class:`~greenpath.data.errors.DataError` names the dataset, the file, the expected MD5
and where the file went, so no training job starts on it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import tarfile
import zipfile
import zlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from greenpath.data.errors import DataError

HTML_SIGNATURES = (b"<!doctype html", b"<html")
_CHUNK = 1 << 20


def md5sum(path: Path) -> str:
    """Hex MD5 of a file, read in 1 MiB chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def looks_like_html(path: Path) -> bool:
    """True when the file starts (after whitespace/BOM) with ``<!DOCTYPE html`` or ``<html``."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    head = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(HTML_SIGNATURES)


def _check_gzip(path: Path) -> str | None:
    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(_CHUNK):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        return f"not a complete gzip file ({exc})"
    return None


def _check_tar(path: Path) -> str | None:
    try:
        with tarfile.open(path, "r:*") as tar:
            for _ in tar:
                pass
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        return f"not a readable tar archive ({exc})"
    return None


def _check_zip(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        return f"not a readable zip archive ({exc})"
    if bad is not None:
        return f"zip member {bad!r} fails its CRC check"
    return None


def _check_npz(path: Path) -> str | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            for key in npz.files:
                npz[key]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        return f"not a readable npz file ({exc})"
    return None


def check_idx(path: Path) -> str | None:
    """Check an uncompressed IDX file (MNIST format): magic, dims and size must agree.

    IDX header: two zero bytes, a type byte (0x08 = uint8), the number of dimensions d,
    then d big-endian uint32 sizes; the payload is prod(sizes) bytes
    (http://yann.lecun.com/exdb/mnist/, "file formats").
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(4)
        if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] != 0x08 or head[3] not in (1, 3):
            return "not an IDX uint8 file (bad magic number)"
        ndim = head[3]
        dims_raw = fh.read(4 * ndim)
        if len(dims_raw) < 4 * ndim:
            return "truncated IDX header"
    dims = struct.unpack(f">{ndim}I", dims_raw)
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if size != expected:
        return f"IDX header announces {dims} ({expected} bytes) but the file has {size} bytes"
    return None


def container_problem(path: Path) -> str | None:
    """Structural check chosen by file name; None when fine or the type is unknown."""
    name = path.name.lower()
    if name.endswith((".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")):
        return _check_tar(path)
    if name.endswith(".gz"):
        return _check_gzip(path)
    if name.endswith(".zip"):
        return _check_zip(path)
    if name.endswith(".npz"):
        return _check_npz(path)
    if name.endswith("-ubyte"):
        return check_idx(path)
    return None


def file_problem(path: Path, md5: str | None) -> str | None:
    """Why ``path`` is bad (HTML page, MD5 mismatch, broken container), or None if fine."""
    if looks_like_html(path):
        return "it is an HTML page (a login, quota or error page saved in place of the data)"
    if md5 is not None:
        got = md5sum(path)
        if got != md5:
            return f"its MD5 is {got}, expected {md5}"
    return container_problem(path)


def quarantine(path: Path, data_root: Path) -> Path:
    """Move ``path`` to ``<data_root>/quarantine/<name>.<UTC timestamp>``; return the new path."""
    qdir = Path(data_root) / "quarantine"
    qdir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = qdir / f"{path.name}.{stamp}"
    try:
        os.replace(path, target)
    except OSError:
        shutil.move(str(path), str(target))
    return target


def verify_files(
    dataset: str,
    data_root: Path,
    files: dict[Path, str | None],
    how_to_fix: str,
    *,
    movable: bool = True,
) -> None:
    """Check every existing file in ``files`` (path -> expected MD5 or None).

    Args:
        dataset: registry name, for the message.
        data_root: the data root; quarantine goes below it.
        files: files to check; absent ones are skipped.
        how_to_fix: appended to the error message.
        movable: False for files the user does not own (e.g. a Debian package's files):
            they are reported but not moved.

    Raises:
        DataError: on the first bad file, after quarantining it.
    """
    for path, md5 in files.items():
        path = Path(path)
        if not path.is_file():
            continue
        problem = file_problem(path, md5)
        if problem is None:
            continue
        expected = f"expected MD5 {md5}" if md5 else "no published MD5 for this file"
        if movable:
            moved = quarantine(path, data_root)
            where = f"It was moved to {moved} so that no job uses it."
        else:
            where = "It was left in place (not owned by greenpath)."
        raise DataError(
            f"Dataset {dataset!r}: file {path} is corrupt: {problem} ({expected}). "
            f"{where} {how_to_fix}"
        )
