"""netopt: traffic analysis, adaptive batching and resilience primitives for the amcp bus.

Pure and sans-I/O: every object takes explicit `now` times and returns decisions; only the
bulkhead touches asyncio. Depends on the standard library, numpy, scipy and lazy_loader alone.
"""

import typing

import lazy_loader

from netopt.breaker import BreakerState, CircuitBreaker
from netopt.compression import compress_if_smaller, decompress_bounded
from netopt.errors import BulkheadFull, DecompressionError, NetoptError
from netopt.perkey import PerKey
from netopt.retry import Backoff
from netopt.rto import RtoEstimator

if typing.TYPE_CHECKING:
    from netopt.analyser import MIN_BINS, Analysis, ClassThresholds, TrafficClass, analyse
    from netopt.batch_policy import (
        NO_BATCHING,
        AdaptiveBatching,
        BatchingStrategy,
        BatchPolicy,
        FixedBatching,
        PolicyLimits,
        choose_policy,
    )
    from netopt.batcher import Batch, BatchAccumulator, FlushReason
    from netopt.bulkhead import Bulkhead
    from netopt.sampler import TrafficSampler
    from netopt.stable import ClassHold, Hysteresis, stable_class
    from netopt.traffic import FamilyTraffic, describe_traffic

# numpy and scipy take most of a second to import, asyncio a tenth of that: the names that
# need them load on first use (PEP 562), so a CLI that needs netopt.retry starts at once.
__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "analyser": ["MIN_BINS", "Analysis", "ClassThresholds", "TrafficClass", "analyse"],
        "batcher": ["Batch", "BatchAccumulator", "FlushReason"],
        "bulkhead": ["Bulkhead"],
        "batch_policy": [
            "NO_BATCHING",
            "AdaptiveBatching",
            "BatchingStrategy",
            "BatchPolicy",
            "FixedBatching",
            "PolicyLimits",
            "choose_policy",
        ],
        "sampler": ["TrafficSampler"],
        "stable": ["ClassHold", "Hysteresis", "stable_class"],
        "traffic": ["FamilyTraffic", "describe_traffic"],
    },
)


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
    "ClassHold",
    "ClassThresholds",
    "DecompressionError",
    "FamilyTraffic",
    "FixedBatching",
    "FlushReason",
    "Hysteresis",
    "NetoptError",
    "PerKey",
    "PolicyLimits",
    "RtoEstimator",
    "TrafficClass",
    "TrafficSampler",
    "analyse",
    "choose_policy",
    "compress_if_smaller",
    "decompress_bounded",
    "describe_traffic",
    "stable_class",
]
