"""The package namespaces load lazily (lazy_loader.attach, PEP 562): importing a package
imports none of the modules behind its names, and each name resolves to what the
package's TYPE_CHECKING imports tell type checkers it is."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAZY = ("amcp", "agents", "agents.cluster", "agents.vsm", "consensus", "crdt", "netopt")


def type_checking_imports(package: str) -> dict[str, str]:
    """name -> module, from the `if typing.TYPE_CHECKING:` block of the package's __init__."""
    path = ROOT.joinpath(*package.split("."), "__init__.py")
    found: dict[str, str] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.module, ast.unparse(stmt)
                found.update({alias.name: stmt.module for alias in stmt.names})
    return found


@pytest.mark.parametrize("package", LAZY)
def test_importing_the_package_loads_none_of_its_lazy_modules(package: str) -> None:
    lazy = sorted(set(type_checking_imports(package).values()))
    assert lazy, f"{package} has no TYPE_CHECKING imports"
    code = f"import sys, {package}; print(__import__('json').dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.check_output([sys.executable, "-c", code], text=True))
    assert [m for m in lazy if m in loaded] == []


@pytest.mark.parametrize("package", LAZY)
def test_each_lazy_name_is_what_type_checkers_are_told(package: str) -> None:
    module = importlib.import_module(package)
    declared = type_checking_imports(package)
    assert set(declared) <= set(module.__all__)
    for name, source in declared.items():
        assert getattr(module, name) is getattr(importlib.import_module(source), name), name
    # every public name is either declared for type checkers or a real (eager) import
    eager = {n for n in module.__all__ if n not in declared}
    held = {n for n in eager if n in vars(module)}
    assert eager == held
