"""The hub's domain errors (the CLI prints them as one line)."""

from __future__ import annotations

from edge.errors import EdgeError


class HubError(EdgeError):
    """A hub setting is invalid or a service it needs cannot be reached."""


class StoreError(HubError):
    """The database URL is unsupported or the database cannot be opened."""


class QueryError(HubError):
    """An API query parameter is invalid (the API answers 400 with this message)."""
