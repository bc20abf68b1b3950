"""netopt: traffic analysis, adaptive batching and resilience primitives for the amcp bus.

Pure and sans-I/O: every object takes explicit `now` times and returns decisions; only the
bulkhead touches asyncio. Depends on the standard library, numpy and scipy alone.
"""

from netopt.analyser import MIN_BINS, Analysis, Thresholds, TrafficClass, analyse
from netopt.batcher import Batch, BatchAccumulator, FlushReason
from netopt.breaker import BreakerState, CircuitBreaker
from netopt.bulkhead import Bulkhead
from netopt.compression import compress_if_smaller, decompress_bounded
from netopt.errors import BulkheadFull, DecompressionError, NetoptError
from netopt.perkey import PerKey
from netopt.policy import (
    NO_BATCHING,
    AdaptiveBatching,
    BatchingStrategy,
    BatchPolicy,
    FixedBatching,
    PolicyLimits,
    choose_policy,
)
from netopt.retry import Backoff
from netopt.rto import RtoEstimator
from netopt.sampler import TrafficSampler

__all__ = [
    "MIN_BINS",
    "NO_BATCHING",
    "AdaptiveBatching",
    "Analysis",
    "Backoff",
    "Batch",
    "BatchAccumulator",
    "BatchPolicy",
    "BatchingStrategy",
    "BreakerState",
    "Bulkhead",
    "BulkheadFull",
    "CircuitBreaker",
    "DecompressionError",
    "FixedBatching",
    "FlushReason",
    "NetoptError",
    "PerKey",
    "PolicyLimits",
    "RtoEstimator",
    "Thresholds",
    "TrafficClass",
    "TrafficSampler",
    "analyse",
    "choose_policy",
    "compress_if_smaller",
    "decompress_bounded",
]
