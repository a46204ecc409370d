"""The package's layers keep to their rules (docs/architecture.md), checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gainsight_segment"
PUBLIC = {
    "gainsight_segment",
    "gainsight_segment.outbox",
    "gainsight_segment.sync",
    "gainsight_segment.testing",
    "gainsight_segment.transport",
}


def modules(folder: str = "") -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """The absolute names of the modules a file imports (relative imports resolved)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names.add(module)
    return names


def name(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


@pytest.mark.parametrize("path", modules("delivery"), ids=name)
def test_delivery_never_imports_an_http_implementation(path: Path) -> None:
    forbidden = {
        "gainsight_segment.transport",
        "gainsight_segment._http",
        "gainsight_segment._deadline",
        "requests",
        "urllib3",
        "socket",
    }
    assert imported(path) & forbidden == set()


def test_the_policy_is_pure() -> None:
    io = {"socket", "threading", "time", "os", "requests", "urllib3", "logging", "random"}
    assert imported(PACKAGE / "delivery" / "_policy.py") & io == set()


@pytest.mark.parametrize("path", [*modules("cli"), *modules("sync"), *modules("testing")], ids=name)
def test_tools_use_only_the_public_api_of_the_core(path: Path) -> None:
    own = "gainsight_segment." + path.relative_to(PACKAGE).parts[0]
    core = {
        module
        for module in imported(path)
        if module.startswith("gainsight_segment") and not module.startswith(own)
    }
    assert core <= PUBLIC, core - PUBLIC


@pytest.mark.parametrize("path", modules(), ids=name)
def test_no_module_is_over_500_lines(path: Path) -> None:
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 500
