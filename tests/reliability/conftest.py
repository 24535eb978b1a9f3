"""Fixtures for the reliability suite: the real app (ml-latest-small + goodbooks-10k, Chroma, no LLM), built once."""
from __future__ import annotations

import pytest

from tests.conftest import SHARED_DATA, has_data

from .common import build_parts


@pytest.fixture(scope="session")
def parts():
    if not has_data("ml-latest-small", "goodbooks-10k"):
        pytest.skip(f"needs ml-latest-small and goodbooks-10k in {SHARED_DATA}")
    return build_parts()
