"""The one table printer of the amcp commands: aligned columns two spaces apart."""

from __future__ import annotations

from collections.abc import Collection, Sequence

__all__ = ["format_table"]


def format_table(rows: Sequence[Sequence[str]], right: Collection[int] = ()) -> str:
    """`rows` (the header first) as lines of columns padded to their widest cell, left
    aligned or right aligned for the column indexes in `right`. The last column is not
    padded, so no line ends in spaces its cells did not have."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(
            [
                *(
                    cell.rjust(width) if i in right else cell.ljust(width)
                    for i, (cell, width) in enumerate(zip(row, widths, strict=False))
                ),
                row[-1],
            ]
        )
        for row in rows
    )
