"""The IDX file format of MNIST (LeCun et al.): big-endian headers, then uint8 pixels or labels.

Images: magic 2051, `>IIII` (magic, n, 28, 28), then n*28*28 bytes. Labels: magic 2049, `>II`, then n bytes.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from common.fileio import atomic_write_bytes, file_digest

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
IMAGE_SIDE = 28


class IdxFormatError(ValueError):
    """An IDX file is truncated, oversized or has a wrong magic number/shape."""


def _atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same dir + os.replace)."""
    atomic_write_bytes(path, lambda fh: fh.write(data))


def write_idx_images(path: str | Path, images: np.ndarray) -> None:
    """Write uint8 images [N, 28, 28] as an IDX3 file (magic 2051), atomically."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise ValueError(f"expected uint8 [N, 28, 28], got {images.dtype} {list(images.shape)}")
    header = struct.pack(">IIII", IMAGE_MAGIC, images.shape[0], IMAGE_SIDE, IMAGE_SIDE)
    _atomic_write_bytes(path, header + np.ascontiguousarray(images).tobytes())


def write_idx_labels(path: str | Path, labels: np.ndarray) -> None:
    """Write uint8 labels [N] as an IDX1 file (magic 2049), atomically."""
    labels = np.asarray(labels)
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"expected uint8 [N], got {labels.dtype} {list(labels.shape)}")
    header = struct.pack(">II", LABEL_MAGIC, labels.shape[0])
    _atomic_write_bytes(path, header + labels.tobytes())


def read_idx_images(path: str | Path) -> np.ndarray:
    """Read an IDX3 image file -> uint8 [N, 28, 28]. Raises IdxFormatError if corrupt."""
    raw = Path(path).read_bytes()
    if len(raw) < 16:
        raise IdxFormatError(f"{path}: {len(raw)} bytes, too short for an IDX3 header (16)")
    magic, n, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != IMAGE_MAGIC:
        raise IdxFormatError(f"{path}: magic {magic}, expected {IMAGE_MAGIC} (IDX3 uint8 images)")
    if (rows, cols) != (IMAGE_SIDE, IMAGE_SIDE):
        raise IdxFormatError(f"{path}: images are {rows}x{cols}, expected 28x28")
    expected = 16 + n * rows * cols
    if len(raw) != expected:
        raise IdxFormatError(f"{path}: header says {n} images = {expected} bytes, file has {len(raw)}")
    # .copy(): frombuffer on bytes is read-only, and torch.from_numpy warns on that.
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows, cols).copy()


def read_idx_labels(path: str | Path) -> np.ndarray:
    """Read an IDX1 label file -> uint8 [N]. Raises IdxFormatError if corrupt."""
    raw = Path(path).read_bytes()
    if len(raw) < 8:
        raise IdxFormatError(f"{path}: {len(raw)} bytes, too short for an IDX1 header (8)")
    magic, n = struct.unpack(">II", raw[:8])
    if magic != LABEL_MAGIC:
        raise IdxFormatError(f"{path}: magic {magic}, expected {LABEL_MAGIC} (IDX1 uint8 labels)")
    if len(raw) != 8 + n:
        raise IdxFormatError(f"{path}: header says {n} labels = {8 + n} bytes, file has {len(raw)}")
    return np.frombuffer(raw, dtype=np.uint8, offset=8).copy()


def file_md5(path: str | Path) -> str:
    """md5 hex digest of a file (MNIST's published checksums are md5)."""
    return file_digest(path, "md5")
