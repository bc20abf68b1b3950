"""Fixtures shared by the consensus integration tests: `ids`, a cluster of agents with
identities and one roster (defined beside the identity tests that introduced it)."""

from tests.integration.consensus.test_identity import ids

__all__ = ["ids"]
