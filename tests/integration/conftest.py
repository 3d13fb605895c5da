"""The integration tests' shared fixtures (``tests/support/fixtures.py``)."""

from __future__ import annotations

from tests.support.fixtures import broker, db_url, store  # noqa: F401 (fixtures, by name)
