"""Digests of text columns as the project writes its keys (problem keys, fingerprints, group
ids): a hash of each value's UTF-8 bytes, shown as a prefix and fixed-width lowercase hex.

hashlib has no column form: the hash is called once per value from C (``map``), and the hex is
made over all digests at once."""

from __future__ import annotations

from collections.abc import Callable
from operator import methodcaller

import numpy as np
import pyarrow as pa

HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DIGEST = methodcaller("digest")


def digest_bytes(values: pa.Array, hash_new: Callable, size: int) -> np.ndarray:
    """The digests (``hash_new`` over each value's UTF-8 bytes, a null as "") as an (n, size)
    uint8 matrix: their first ``size`` bytes."""
    data = values.fill_null("").cast(pa.binary()).to_numpy(zero_copy_only=False)
    raw = np.frombuffer(b"".join(map(_DIGEST, map(hash_new, data))), dtype=np.uint8)
    if len(data) == 0:
        return np.zeros((0, size), dtype=np.uint8)
    return raw.reshape(len(data), -1)[:, :size]


def hex_texts(raw: np.ndarray, prefix: str = "") -> pa.Array:
    """``prefix`` + two lowercase hex digits per byte of each row of ``raw`` (an (n, k) uint8
    matrix); fixed width, so the texts sort as the bytes do."""
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    width = len(head) + 2 * raw.shape[1]
    text = np.empty((len(raw), width), dtype=np.uint8)
    text[:, : len(head)] = head
    text[:, len(head) :: 2] = HEX_DIGITS[raw >> 4]
    text[:, len(head) + 1 :: 2] = HEX_DIGITS[raw & 15]
    return pa.StringArray.from_buffers(
        len(raw),
        pa.py_buffer(np.arange(0, width * len(raw) + 1, width, dtype=np.int32)),
        pa.py_buffer(text.tobytes()),
    )
