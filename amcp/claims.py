"""At-most-once across a queue group: a frame's claim in a JetStream key-value bucket.

Each member of a queue group keeps its own replay window, so a frame recorded off the wire
and published again reaches another member, which has never seen it. A claim closes that
gap: before acting, the member creates the key of the frame's (sender, epoch, seq) in the
cluster's claims bucket, a publish that JetStream stores only if the key has no message
yet (`Nats-Expected-Last-Subject-Sequence: 0`, what a KV `create` sends). Only one
delivery anywhere in the cluster wins; every later one is a duplicate.

Keys expire after `claim_ttl`, a little over twice the replay skew window: a frame stamped
up to one skew ahead is accepted until one skew after its stamp, and anything older is
refused as stale by every receiver. The bucket is in memory (no disk write per call); a
restart of a one-server JetStream forgets the claims of that last minute, while a bucket
with 3 replicas (`amcp cluster prepare`) keeps them across the loss of one node.
When JetStream cannot answer, `Claims.claim` raises ClaimUnavailable: the caller must not
act (fail closed). docs/PROTOCOL.md, "At most once across a queue group".
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from nats.js.api import StorageType
from nats.js.errors import (
    APIError,
    NoStreamResponseError,
    NotFoundError,
    ServiceUnavailableError,
)

from amcp.errors import ClaimUnavailable
from amcp.subjects import validate_token

__all__ = [
    "DUPLICATE",
    "Claims",
    "claim_key",
    "claim_ttl",
    "claims_bucket",
]

log = logging.getLogger("amcp.claims")

DUPLICATE = "duplicate"
"""The rejection reason of a frame that lost its claim (counted beside `replay`)."""

MAX_BYTES = 64 << 20
"""Bound of the bucket's memory: about 450,000 live claims, 6,800 claimed calls/s for a
claim's whole life at the default skew. Past it new claims fail and calls are refused."""

_EXPECT_NEW = {"Nats-Expected-Last-Subject-Sequence": "0"}
_WRONG_LAST_SEQUENCE = (10071, 10164)  # JetStream's "wrong last sequence" error codes


def claims_bucket(cluster: str) -> str:
    """The key-value bucket of a cluster's claims (its stream is `KV_<bucket>`, its keys
    live under `$KV.<bucket>.`); cluster names are already bucket-safe tokens."""
    return f"AMCP_CLAIMS_{validate_token(cluster, 'cluster name')}"


def claim_ttl(skew_seconds: float) -> float:
    """How long a claim lives: 2.2 skew windows (twice the window, and 10% for clocks)."""
    return 2.2 * skew_seconds


def claim_key(sender: str, epoch: int, seq: int) -> str:
    """The key of a frame's replay identity: a digest, since a sender name may hold
    characters a key may not. The name comes first and the two numbers have fixed
    widths, so two identities never share their bytes."""
    digest = hashlib.blake2b(sender.encode(), digest_size=16)
    digest.update(epoch.to_bytes(8, "big") + seq.to_bytes(8, "big"))
    return digest.hexdigest()


class Claims:
    """One cluster's claims bucket, reached over one NATS connection (`nc`). `holder` is
    stored as each claim's value, to tell who acted when the bucket is inspected."""

    def __init__(
        self,
        nc: Any,
        cluster: str,
        *,
        holder: str,
        skew_seconds: float = 30.0,
        timeout: float = 2.0,
    ) -> None:
        self.bucket = claims_bucket(cluster)
        self.stream = f"KV_{self.bucket}"
        self.ttl = claim_ttl(skew_seconds)
        self._nc = nc
        self._timeout = timeout
        self._value = holder.encode()
        self._prefix = f"$KV.{self.bucket}."
        self._js: Any = None
        self._ready = False

    async def ensure(self, replicas: int = 1) -> None:
        """Create the bucket unless it exists; an existing one is kept as it is (so an
        operator may create it first with 3 replicas). ClaimUnavailable without JetStream."""
        js = self._jetstream()
        try:
            try:
                info = await js.stream_info(self.stream)
            except NotFoundError:
                try:
                    await js.create_key_value(
                        bucket=self.bucket,
                        description="amcp: frames acted on, at most once across a queue group",
                        ttl=self.ttl,
                        storage=StorageType.MEMORY,
                        replicas=replicas,
                        max_bytes=MAX_BYTES,
                    )
                except Exception:  # another member may have made it meanwhile
                    info = await js.stream_info(self.stream)
                else:
                    info = None
        except Exception as exc:
            raise ClaimUnavailable(self._why("cannot open the claims bucket", exc)) from None
        if info is not None and (info.config.max_age or 0) < self.ttl:
            log.warning(
                "claims bucket %s keeps claims %ss, less than the %ss this receiver's skew "
                "window needs: a replay in between reaches a queue group again",
                self.bucket,
                info.config.max_age,
                self.ttl,
            )
        self._ready = True

    async def claim(self, sender: str, epoch: int, seq: int) -> bool:
        """True for the first claim of this (sender, epoch, seq) in the cluster, False for
        any later one. ClaimUnavailable when JetStream cannot tell: then nobody may act."""
        if not self._ready:
            await self.ensure()
        subject = self._prefix + claim_key(sender, epoch, seq)
        try:
            return await self._create(subject)
        except NoStreamResponseError:
            pass
        # No stream listens: the bucket went away (in memory, on a restarted server).
        self._ready = False
        await self.ensure()
        try:
            return await self._create(subject)
        except NoStreamResponseError as exc:
            raise ClaimUnavailable(self._why("no claims bucket answers", exc)) from None

    async def _create(self, subject: str) -> bool:
        try:
            await self._js.publish(subject, self._value, headers=_EXPECT_NEW, timeout=self._timeout)
            return True
        except APIError as exc:
            if exc.err_code in _WRONG_LAST_SEQUENCE:
                return False
            raise ClaimUnavailable(self._why("the claims bucket refused a claim", exc)) from None
        except NoStreamResponseError:
            raise
        except Exception as exc:  # a timeout or a lost connection: nobody can know
            raise ClaimUnavailable(self._why("no answer from the claims bucket", exc)) from None

    def _jetstream(self) -> Any:
        if self._js is None:
            self._js = self._nc.jetstream(timeout=self._timeout)
        return self._js

    def _why(self, what: str, exc: BaseException) -> str:
        if isinstance(exc, ServiceUnavailableError):
            detail = "JetStream is not enabled on this NATS server (or not for this account)"
        else:
            detail = f"is JetStream enabled and reachable? {str(exc) or type(exc).__name__}"
        return f"{what} {self.bucket}: {detail}"
