"""At-most-once across a queue group: a frame's claim in a JetStream key-value bucket.

Each member of a queue group keeps its own replay window, so a frame recorded off the wire
and published again reaches another member, which has never seen it. A claim closes that
gap: before acting, the member creates the key of the frame's (sender, epoch, seq) in the
cluster's claims bucket; the create fails when the key exists, so only one member (and
only one delivery) ever wins. Keys expire a little after twice the replay skew window:
older frames are refused as stale by every receiver anyway.
"""

from __future__ import annotations

from amcp.subjects import validate_token

__all__ = ["claims_bucket"]


def claims_bucket(cluster: str) -> str:
    """The key-value bucket of a cluster's claims (its stream is `KV_<bucket>`, its keys
    live under `$KV.<bucket>.`); cluster names are already bucket-safe tokens."""
    return f"AMCP_CLAIMS_{validate_token(cluster, 'cluster name')}"
