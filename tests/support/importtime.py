"""Which modules a command line imports: the program run under `python -X importtime`
(tests/support/cli.py runs it), the modules read from the report it writes to stderr."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from tests.support.cli import amcp

__all__ = ["Imports", "imports_of"]

# "import time:       self [us] |  cumulative | <indent>module", one line per module
_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|( *)(\S+)$")


@dataclass(frozen=True)
class Imports:
    """The modules one run imported, in the report's order (a module after those it
    imported), each with its nesting depth."""

    run: subprocess.CompletedProcess[str]
    order: tuple[tuple[int, str], ...]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(name for _, name in self.order)

    def packages(self, *tops: str) -> list[str]:
        """Which of the top-level packages `tops` were imported."""
        return sorted({n.split(".", 1)[0] for n in self.names} & set(tops))

    def chain(self, package: str) -> list[str]:
        """Who imported `package` first: its module, then the importers outwards (those
        outside the package)."""
        for i, (depth, name) in enumerate(self.order):
            if name.split(".", 1)[0] == package:
                found = [name]
                for outer_depth, outer in self.order[i + 1 :]:
                    if outer_depth < depth:
                        depth = outer_depth
                        if outer.split(".", 1)[0] != package:
                            found.append(outer)
                return found
        return []

    def explain(self, *packages: str) -> str:
        return "; ".join(f"{p} via {' <- '.join(self.chain(p))}" for p in packages)


def imports_of(
    *args: str, run: Sequence[str] = ("-m", "amcp.cli.main"), env: dict[str, str] | None = None
) -> Imports:
    """Run `python -X importtime RUN ARGS` (by default `-m amcp.cli.main`, what the `amcp`
    console script runs) and read what it imported."""
    program = [sys.executable, "-X", "importtime", *run]
    done = amcp(*args, program=program, env=env)
    order = []
    for line in done.stderr.splitlines():
        if m := _LINE.match(line):
            order.append(((len(m.group(1)) - 1) // 2, m.group(2)))
    return Imports(done, tuple(order))
