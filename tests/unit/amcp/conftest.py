"""Fixtures of the amcp unit tests."""

from __future__ import annotations

import pytest

from amcp import Keyring
from tests.support import factories


@pytest.fixture
def ring() -> Keyring:
    """A keyring of one fresh signing key (test_protocol.py's own reads its test clock)."""
    return factories.ring()
