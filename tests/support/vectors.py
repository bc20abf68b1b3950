"""docs/PROTOCOL.md's test vectors as data: a fenced ```json <tag> block read as JSON, and
binary values written `{"hex": ...}` turned back into bytes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

__all__ = ["PROTOCOL_DOC", "doc_vectors", "from_hex"]

PROTOCOL_DOC = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"


def doc_vectors(tag: str, doc: Path = PROTOCOL_DOC) -> Any:
    """The JSON of the ```json `tag` block of `doc` (the test fails if there is none)."""
    block = re.search(rf"```json {re.escape(tag)}\n(.*?)```", doc.read_text(), re.S)
    assert block, f"{doc.name} has no ```json {tag} block"
    return json.loads(block.group(1))


def from_hex(value: Any) -> Any:
    """`value` with every {"hex": ...} replaced by its bytes, at any depth."""
    if isinstance(value, dict) and set(value) == {"hex"}:
        return bytes.fromhex(value["hex"])
    if isinstance(value, dict):
        return {k: from_hex(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_hex(v) for v in value]
    return value
