"""Adaptive request timeouts computed as TCP computes its retransmission timeout (RFC 6298).

Karn's rule is the caller's: only a request answered on its first attempt is a sample; a
reply to a retried request cannot be matched to one attempt, so it is never observed.
Keep one estimator per destination in a `PerKey` to bound the number of destinations.
"""

from __future__ import annotations

__all__ = ["RtoEstimator"]

ALPHA = 1 / 8
BETA = 1 / 4
K = 4


class RtoEstimator:
    """SRTT, RTTVAR and RTO of one destination, in seconds; `rto` is the next timeout.

    First sample R: SRTT = R, RTTVAR = R/2. Each later sample R':
    RTTVAR = (1 - beta) RTTVAR + beta |SRTT - R'|, then SRTT = (1 - alpha) SRTT + alpha R'.
    RTO = SRTT + max(G, K RTTVAR), clamped to [min_rto, max_rto]; a timeout doubles it (up to
    max_rto) until the next sample recomputes it. The RFC's 1 s floor is for the Internet;
    on a bus, a lower floor is the point.
    """

    __slots__ = ("granularity", "max_rto", "min_rto", "rto", "rttvar", "srtt")

    def __init__(
        self,
        initial_rto: float = 1.0,
        min_rto: float = 0.1,
        max_rto: float = 60.0,
        granularity: float = 0.001,
    ) -> None:
        if not 0 < min_rto <= max_rto:
            raise ValueError(f"need 0 < min_rto <= max_rto, got {min_rto}, {max_rto}")
        self.min_rto = min_rto
        self.max_rto = max_rto
        self.granularity = granularity
        self.srtt: float | None = None
        self.rttvar: float | None = None
        self.rto = self._clamp(initial_rto)

    def observe(self, rtt: float) -> None:
        """Take a round-trip time sample (from a request that was not retried)."""
        if rtt < 0:
            raise ValueError(f"rtt must be >= 0, got {rtt}")
        if self.srtt is None or self.rttvar is None:
            self.srtt = rtt
            self.rttvar = rtt / 2
        else:
            self.rttvar = (1 - BETA) * self.rttvar + BETA * abs(self.srtt - rtt)
            self.srtt = (1 - ALPHA) * self.srtt + ALPHA * rtt
        self.rto = self._clamp(self.srtt + max(self.granularity, K * self.rttvar))

    def backoff(self) -> None:
        """A request timed out: double the timeout (RFC 6298 section 5.5)."""
        self.rto = self._clamp(self.rto * 2)

    def _clamp(self, rto: float) -> float:
        return min(self.max_rto, max(self.min_rto, rto))
