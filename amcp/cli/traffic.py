"""`amcp traffic`: observe verified traffic and show, per subject family, its rate, traffic
class, dominant period and the batching an adaptive bus would put in force.

It subscribes to a pattern and samples what arrives: that works against any running
system, needs no cooperation from the publishers, and counts only messages whose MAC
verified (each message inside a batch counts once). A single observer verifies every
message it counts, so past roughly 100 000 messages per second it falls behind; narrow
--subject for busier systems.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amcp.cli.common import (
    EXIT_OK,
    MAX_SECONDS,
    add_connection_options,
    connect,
    emit,
    run_until_stopped,
)
from amcp.cli.table import format_table
from amcp.errors import ConfigError
from amcp.subjects import validate_subject
from netopt.analyser import MIN_BINS

# The sampler, the policies and the bus's batching load when the command runs, not for --help.
if TYPE_CHECKING:
    from amcp.message import Message
    from netopt import BatchPolicy, FamilyTraffic, TrafficSampler

BIN_SECONDS = 0.1
MIN_SECONDS = MIN_BINS * BIN_SECONDS + 0.4  # room for the partly filled first and last bins
PLOT_FAMILIES = 6


def register(sub: argparse._SubParsersAction) -> None:
    traffic = sub.add_parser(
        "traffic",
        help="show traffic per subject family and the batching it calls for",
        description="Subscribe to a subject pattern for a while, then show per subject family "
        "(first two tokens) the message rate, traffic class (idle, steady, periodic, "
        "bursty), dominant period and the batching an adaptive bus would use.",
    )
    traffic.add_argument(
        "--subject", default=">", metavar="PATTERN", help="subjects to observe (default '>')"
    )
    traffic.add_argument(
        "--seconds",
        type=float,
        default=10.0,
        metavar="S",
        help=f"how long to observe (default 10, at least {MIN_SECONDS:g}; Ctrl-C ends early)",
    )
    traffic.add_argument(
        "--plot", metavar="FILE", help="write a PNG of each family's power spectrum"
    )
    add_connection_options(traffic)
    traffic.set_defaults(func=cmd_traffic)


def _check(args: argparse.Namespace) -> None:
    """Refuse what would fail only after observing for S seconds."""
    validate_subject(args.subject, wildcards=True)
    if not MIN_SECONDS <= args.seconds <= MAX_SECONDS:
        raise ConfigError(
            f"--seconds must be at least {MIN_SECONDS:g} (the analyser needs {MIN_BINS} bins "
            f"of {BIN_SECONDS:g} s) and at most {MAX_SECONDS:.15g}"
        )
    if args.plot:
        try:
            import matplotlib  # noqa: F401 - checked now, before observing for S seconds
        except ImportError:
            raise ConfigError("--plot needs matplotlib: pip install 'amcp[plot]'") from None
        plot = Path(args.plot).expanduser()
        if plot.is_dir():
            raise ConfigError(f"--plot {plot} is a directory; name the PNG file")
        if not plot.parent.is_dir() or not os.access(plot.parent, os.W_OK):
            raise ConfigError(f"--plot {plot}: {plot.parent} is not a folder this user can write")


def cmd_traffic(args: argparse.Namespace) -> int:
    import asyncio

    from amcp.batching import BUS_LIMITS, subject_family
    from netopt import TrafficSampler, describe_traffic

    _check(args)

    async def main(stop: asyncio.Event) -> int:
        sampler = TrafficSampler(BIN_SECONDS, bins=math.ceil(args.seconds / BIN_SECONDS) + 2)
        clock = asyncio.get_running_loop().time
        families: dict[str, str] = {}

        def on_message(msg: Message) -> None:
            family = families.get(msg.subject)
            if family is None:
                family = families[msg.subject] = subject_family(msg.subject)
            sampler.record(family, 0, clock())

        bus = await connect(args)
        try:
            await bus.subscribe(args.subject, on_message)
            await bus.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.seconds)
            rejected = {k: v for k, v in bus.rejections.items() if v}
        finally:
            await bus.close()
        now = clock()
        report = describe_traffic(sampler, now, BUS_LIMITS)
        if args.plot:
            _plot(sampler, report, now, Path(args.plot))
        doc = {
            "subject": args.subject,
            "seconds": args.seconds,
            "families": [_row(t) for t in report],
            "rejected": rejected,
            "plot": args.plot,
        }
        emit(doc, args.json, _render(report, args.subject, rejected))
        return EXIT_OK

    return run_until_stopped(main)


def _row(t: FamilyTraffic) -> dict[str, Any]:
    row = t.as_dict()
    del row["bytes"]  # the observer counts verified messages; their sizes are the bus's
    return row


def _policy_text(policy: BatchPolicy) -> str:
    if policy.linger_seconds == 0:
        return f"natural (up to {policy.max_messages} per frame, no linger)"
    return f"up to {policy.max_messages} per frame, linger {policy.linger_seconds * 1000:.2f} ms"


def _render(report: list[FamilyTraffic], subject: str, rejected: dict[str, int]) -> str:
    lines = [_table(report) if report else f"no verified traffic on {subject}"]
    if rejected:
        lines.append("rejected frames: " + ", ".join(f"{k} {v}" for k, v in rejected.items()))
    return "\n".join(lines)


def _table(report: list[FamilyTraffic]) -> str:
    rows = [["family", "msgs", "msg/s", "class", "period", "batching"]]
    for t in report:
        cls = "too short" if t.traffic_class is None else str(t.traffic_class)
        period = "-" if t.period_seconds is None else f"{t.period_seconds:.2f} s"
        # fixed widths, so columns keep their place from one run to the next
        rows.append(
            [
                t.family,
                f"{t.messages:9d}",
                f"{t.rate:10.1f}",
                f"{cls:9}",
                f"{period:>8}",
                _policy_text(t.policy),
            ]
        )
    return format_table(rows, right={1, 2, 4})


def _plot(sampler: TrafficSampler, report: list[FamilyTraffic], now: float, path: Path) -> None:
    """One panel per family (the busiest few): the detrended, Hamming-windowed
    periodogram the analyser looks at, with the dominant period marked."""
    import matplotlib
    import numpy as np
    from scipy import signal

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [t for t in report if t.traffic_class is not None][:PLOT_FAMILIES]
    fig, axes = plt.subplots(
        max(1, len(shown)), 1, figsize=(8, 2.6 * max(1, len(shown))), squeeze=False
    )
    if not shown:
        axes[0][0].text(
            0.5, 0.5, "no family observed long enough to analyse", ha="center", va="center"
        )
        axes[0][0].set_axis_off()
    for ax, t in zip((row[0] for row in axes), shown, strict=False):
        counts = sampler.series(t.family, now).astype(np.float64)
        freqs, power = signal.periodogram(
            signal.detrend(counts), 1 / sampler.bin_seconds, window="hamming", detrend=False
        )
        ax.semilogy(freqs[1:], np.maximum(power[1:], 1e-12), lw=1)
        if t.period_seconds is not None:
            ax.axvline(
                1 / t.period_seconds, color="red", ls="--", label=f"period {t.period_seconds:.2f} s"
            )
            ax.legend(loc="upper right")
        ax.set_title(f"{t.family}: {t.traffic_class}, {t.rate:.1f} msg/s", fontsize=10)
        ax.set_ylabel("power")
    axes[-1][0].set_xlabel("frequency (Hz)")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
