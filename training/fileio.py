"""Temporary: moved to common.fileio (removed once every import is updated)."""

from common.fileio import atomic_write_bytes, file_digest, file_sha256  # noqa: F401
