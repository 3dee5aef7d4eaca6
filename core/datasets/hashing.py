"""Exact and perceptual fingerprints of images, to find leaks between splits."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np

_HASH_SIDE = 32
_HASH_BLOCK = 8


def pixel_checksum(array: np.ndarray) -> str:
    """A checksum of the pixels (not the file bytes): the same image re-encoded hashes the same.

    >>> pixel_checksum(np.zeros((2, 2), np.uint8)) == pixel_checksum(np.zeros((2, 2), np.uint8))
    True
    >>> pixel_checksum(np.zeros((2, 2), np.uint8)) == pixel_checksum(np.zeros((4, 1), np.uint8))
    False
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{array.shape}|{array.dtype}".encode())
    digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def _to_gray_float(array: np.ndarray) -> np.ndarray:
    gray = array if array.ndim == 2 else array[..., :3].mean(axis=2)
    return gray.astype(np.float32)


def perceptual_hash(array: np.ndarray) -> int:
    """64-bit DCT perceptual hash: similar-looking images differ in few bits.

    Brightness and contrast changes, re-encoding and mild resizing keep the hash
    (nearly) the same. Returned as a signed 64-bit integer, ready for DuckDB ``BIGINT``.

    >>> ramp = np.tile(np.arange(64, dtype=np.uint8), (64, 1))
    >>> perceptual_hash(ramp) == perceptual_hash(ramp * 2)
    True
    """
    small = cv2.resize(_to_gray_float(array), (_HASH_SIDE, _HASH_SIDE), interpolation=cv2.INTER_AREA)
    coefficients = cv2.dct(small)[:_HASH_BLOCK, :_HASH_BLOCK].ravel()[1:]  # drop the DC (mean) term
    bits = coefficients > np.median(coefficients)
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return int(np.array(value, dtype=np.uint64).view(np.int64))


def hamming_matrix(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Bit distances between every hash in ``left`` and every hash in ``right`` (int64 arrays).

    >>> hamming_matrix(np.array([0, 3]), np.array([1])).tolist()
    [[1], [1]]
    """
    xor = np.bitwise_xor(left.astype(np.int64)[:, None], right.astype(np.int64)[None, :])
    return np.bitwise_count(xor.view(np.uint64)).astype(np.int16)
