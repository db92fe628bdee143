"""File fingerprints: the sha256 that names an input, an output or a returned list everywhere."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

BLOCK_BYTES = 1 << 20

# Hashes this process computed or was handed, each under what names the file's content while it
# stays: its resolved path, size, modification time and inode.
_known: dict[tuple, str] = {}


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def _mark(path: Path) -> tuple:
    stat = os.stat(path)
    return (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)


def cached_sha256(path: Path) -> str:
    """:func:`sha256_file`, computed once per process while the file's size, modification time
    and inode stay the same (an export is hashed to see whether it changed, and again by ingest)."""
    mark = _mark(path)
    if mark not in _known:
        _known[mark] = sha256_file(path)
    return _known[mark]


def known_sha256(path: Path) -> str | None:
    """The hash of ``path`` if this process has it for the file as it is now, without hashing."""
    return _known.get(_mark(path))


def known_hashes(paths: Iterable[Path]) -> dict[tuple, str]:
    """The hashes this process has of ``paths`` as they are now, to hand to another process
    (:func:`remember_hashes`): a worker that reads a large export then need not hash it again."""
    marks = [_mark(path) for path in paths]
    return {mark: _known[mark] for mark in marks if mark in _known}


def remember_hashes(hashes: dict[tuple, str]) -> None:
    """Take hashes another process computed (:func:`known_hashes`); each holds only while its
    file keeps the size, modification time and inode it had."""
    _known.update(hashes)
