"""The layer rule (docs/architecture.md): imports between the project's top-level packages only go
the ways the table below allows. Lazy imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package -> the project packages it may import (besides itself). The core imports no layer; the
# speed and batch layers never import each other; only the CLI sits above everything.
ALLOWED: dict[str, frozenset[str]] = {
    "adclick": frozenset(),
    "infra": frozenset({"adclick"}),
    "traffic": frozenset({"adclick"}),
    "ingestion": frozenset({"adclick"}),
    "speed_layer": frozenset({"adclick"}),
    "serving": frozenset({"adclick"}),
    "expectations": frozenset({"adclick"}),
    "batch_layer": frozenset({"adclick", "expectations", "serving"}),
    "query_api": frozenset({"adclick", "serving"}),
    "dags": frozenset({"adclick", "batch_layer"}),
    "cli": frozenset(
        {"adclick", "infra", "traffic", "ingestion", "speed_layer", "serving", "batch_layer", "query_api"}
    ),
}
PACKAGES = frozenset(ALLOWED) | {"bench", "tests"}


def imported_packages(source: str) -> set[str]:
    """The project's top-level packages that ``source`` imports (absolute imports, anywhere)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names} & PACKAGES
    return found


def violations(package: str, sources: dict[str, str]) -> list[str]:
    """``<module> imports <package>`` for each import the rule forbids ``package``."""
    allowed = ALLOWED[package] | {package}
    return [
        f"{name} imports {other}"
        for name, source in sorted(sources.items())
        for other in sorted(imported_packages(source) - allowed)
    ]


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_the_layer_rule_allows(package: str) -> None:
    sources = {
        str(path.relative_to(ROOT)): path.read_text(encoding="utf-8")
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert sources, f"{package}/ has no modules"
    assert violations(package, sources) == []


def test_every_top_level_package_is_governed() -> None:
    on_disk = {p.parent.name for p in ROOT.glob("*/__init__.py")} | {"dags"}
    assert on_disk - {"tests", "bench"} <= set(ALLOWED)


def test_the_check_catches_forbidden_imports_lazy_ones_too() -> None:
    probe = "import os\n\ndef f():\n    from speed_layer.aggregates import top_ads\n    import infra.stack\n"
    assert violations("batch_layer", {"batch_layer/probe.py": probe}) == [
        "batch_layer/probe.py imports infra",
        "batch_layer/probe.py imports speed_layer",
    ]
    assert violations("adclick", {"adclick/x.py": "from cli.main import main\n"}) == [
        "adclick/x.py imports cli"
    ]
    assert violations("speed_layer", {"s.py": "from adclick.measures import COUNTS\nimport pyspark\n"}) == []
    assert imported_packages("from . import sibling\n") == set()
