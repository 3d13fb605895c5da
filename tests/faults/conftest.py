"""The fault suite: every test here injects a fault (crash mid-write, full disk, corrupt or
missing file, duplicate process, restart under load, hostile input, a dependency that is
down) and checks that nothing committed is lost and that health tells the truth."""

from __future__ import annotations

import pytest

from tests.support.fixtures import broker, db_url, store  # noqa: F401 (fixtures, by name)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.faults)
