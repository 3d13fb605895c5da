"""Shared fixtures. Real models come from the zoo cache (pulled once, sha256-checked)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from edge.models import zoo
from edge.models.resolve import ResolvedModel, resolve

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(scope="session")
def models_home() -> Path:
    """The cache the test run shares (``$EDGEWISE_HOME`` or the default); pulls happen once."""
    return zoo.edgewise_home()


@pytest.fixture(scope="session")
def zoo_model(models_home: Path) -> Callable[[str], ResolvedModel]:
    """``zoo_model("blazeface-short")`` → the pulled, verified model and its manifest."""
    cache: dict[str, ResolvedModel] = {}

    def get(name: str) -> ResolvedModel:
        if name not in cache:
            cache[name] = resolve(name, models_home)
        return cache[name]

    return get
