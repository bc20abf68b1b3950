"""The optional compiled extension, `amcp._speedups`: where each hot path's C version is
looked up. Every one has a pure-Python reference beside it (signing, replay, protocol),
used when the extension was not built or AMCP_NO_SPEEDUPS is set.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["compiled"]


def compiled(name: str) -> Any:
    """`amcp._speedups.<name>` if the extension was built and AMCP_NO_SPEEDUPS is unset
    (it forces the pure-Python reference, to test or debug it), else None."""
    if os.environ.get("AMCP_NO_SPEEDUPS"):
        return None
    try:
        import amcp._speedups as _speedups
    except ImportError:
        return None
    return getattr(_speedups, name, None)
