"""The outbox's one error type."""

from __future__ import annotations

from edge.errors import EdgeError


class OutboxError(EdgeError):
    """The outbox could not do its job (commit an append, read its file, record its seq
    high-water mark). The message names the file and the real cause (``disk is full``,
    ``read-only file system``), never a follow-on error such as a failed ROLLBACK."""
