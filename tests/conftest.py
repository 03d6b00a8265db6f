"""Shared fixtures. The embedded model is loaded once per test session."""

from __future__ import annotations

import pytest

from core.config import Settings


@pytest.fixture(scope="session")
def embedded_backend():
    """The real embedded SmolLM2 judge (transformers, CPU)."""
    from core.backends import load_backend

    return load_backend(Settings())
