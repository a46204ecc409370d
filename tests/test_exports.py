"""The public API is exactly what the pages of docs/api/ document, and all of it is documented.

Each public package (``gainsight_segment`` and its ``outbox``, ``sync``, ``testing`` and
``transport``, and the fixtures of ``pytest_plugin``) lists its names in a sorted ``__all__``,
and the API pages, together, have one ``::: PACKAGE.NAME`` entry per name and no other entry:
adding a name to an ``__all__`` without documenting it (or the reverse), documenting a name
twice or on two pages, or documenting an internal name fails here.
"""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
import typing
from pathlib import Path
from types import ModuleType

import pytest

import gainsight_segment
from gainsight_segment import _version, sync
from gainsight_segment._errors import DeliveryErrorKind

API_DIR = Path(__file__).resolve().parent.parent / "docs" / "api"
_ENTRY = re.compile(r"^:::[ \t]+(gainsight_segment(?:\.[A-Za-z_][A-Za-z0-9_]*)*)[ \t]*$", re.M)
PACKAGES = [
    "gainsight_segment",
    "gainsight_segment.outbox",
    "gainsight_segment.pytest_plugin",
    "gainsight_segment.sync",
    "gainsight_segment.testing",
    "gainsight_segment.transport",
]


def package(name: str) -> ModuleType:
    return importlib.import_module(name)


def api_pages() -> list[Path]:
    return sorted(API_DIR.rglob("*.md"))


def documented() -> list[str]:
    """The targets of the ``:::`` entries of every API page, page by page, in page order."""
    return [
        target
        for page in api_pages()
        for target in _ENTRY.findall(page.read_text(encoding="utf-8"))
    ]


def documented_names(package_name: str) -> set[str]:
    """The names the API page documents as ``PACKAGE.NAME``, the other packages aside."""
    names = set()
    for target in documented():
        owner, _, name = target.rpartition(".")
        if owner == package_name and target not in PACKAGES:
            names.add(name)
    return names


def public_names() -> list[tuple[str, str]]:
    return [(name, member) for name in PACKAGES for member in package(name).__all__]


def public_classes() -> list[tuple[str, str]]:
    return [
        (name, member)
        for name, member in public_names()
        if inspect.isclass(getattr(package(name), member))
    ]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted(name: str) -> None:
    assert package(name).__all__ == sorted(package(name).__all__)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_has_no_duplicates(name: str) -> None:
    assert len(set(package(name).__all__)) == len(package(name).__all__)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_exactly_what_the_api_page_documents(name: str) -> None:
    assert set(package(name).__all__) == documented_names(name)


def test_each_name_is_documented_once() -> None:
    entries = documented()
    assert len(entries) == len(set(entries))


def test_the_api_pages_document_nothing_but_the_public_names() -> None:
    public = {f"{owner}.{name}" for owner, name in public_names()}
    assert [target for target in documented() if target not in public] == []


def test_there_are_api_pages_and_every_one_is_in_the_nav() -> None:
    pages = api_pages()
    assert len(pages) > 1
    nav = (API_DIR.parent.parent / "mkdocs.yml").read_text(encoding="utf-8")
    for page in pages:
        assert f"api/{page.relative_to(API_DIR).as_posix()}" in nav, page


def test_every_delivery_error_kind_is_explained_on_the_errors_page() -> None:
    page = (API_DIR / "results.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z_]+)` \|", page, re.M)
    assert rows[1:] == list(typing.get_args(DeliveryErrorKind))  # rows[0] is the heading


@pytest.mark.parametrize(("owner", "name"), public_names())
def test_name_is_importable(owner: str, name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {owner} import {name}", namespace)
    assert namespace[name] is getattr(package(owner), name)


@pytest.mark.parametrize(
    ("owner", "name"),
    [
        (owner, name)
        for owner, name in public_names()
        if inspect.isclass(getattr(package(owner), name))
        or inspect.isfunction(getattr(package(owner), name))
    ],
)
def test_name_has_its_own_docstring(owner: str, name: str) -> None:
    obj = getattr(package(owner), name)
    # __doc__ itself, not inspect.getdoc(): a class must not borrow its base class's docstring.
    assert (obj.__doc__ or "").strip(), f"{owner}.{name} has no docstring"


_DESCRIPTORS = (property, classmethod, staticmethod)


def _public_members(cls: type) -> list[tuple[str, object]]:
    return [
        (name, member)
        for name, member in vars(cls).items()
        if not name.startswith("_")
        and (inspect.isfunction(member) or isinstance(member, _DESCRIPTORS))
    ]


@pytest.mark.parametrize(
    ("owner", "member"),
    [
        (f"{owner}.{name}", member_name)
        for owner, name in public_classes()
        for member_name, _ in _public_members(getattr(package(owner), name))
    ],
)
def test_public_method_has_a_docstring(owner: str, member: str) -> None:
    module, _, name = owner.rpartition(".")
    obj = vars(getattr(package(module), name))[member]
    function = obj.__func__ if isinstance(obj, (classmethod, staticmethod)) else obj
    assert (function.__doc__ or "").strip(), f"{owner}.{member} has no docstring"


def test_version_is_the_single_source() -> None:
    assert gainsight_segment.__version__ == _version.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?", _version.__version__)


# The audience names that were top-level names before gainsight_segment.sync existed.
MOVED_TO_SYNC = [
    "AudienceSync",
    "MemoryStore",
    "SQLiteStore",
    "StateChange",
    "StateDiff",
    "StateStore",
    "SyncProgress",
    "SyncResult",
    "TraitSync",
    "audience_key",
]


@pytest.mark.parametrize("name", MOVED_TO_SYNC)
def test_an_audience_name_at_the_top_level_still_works_with_a_deprecation_warning(
    name: str,
) -> None:
    with pytest.warns(DeprecationWarning, match=f"from gainsight_segment.sync import {name}"):
        value = getattr(gainsight_segment, name)
    assert value is getattr(sync, name)


def test_an_audience_name_imported_from_the_top_level_warns_at_the_import() -> None:
    namespace: dict[str, object] = {}
    with pytest.warns(DeprecationWarning, match="gainsight_segment.AudienceSync is deprecated"):
        exec("from gainsight_segment import AudienceSync", namespace)
    assert namespace["AudienceSync"] is sync.AudienceSync


def test_the_deprecated_names_are_not_listed_at_the_top_level() -> None:
    assert not set(MOVED_TO_SYNC) & {*gainsight_segment.__all__, *dir(gainsight_segment)}


def test_a_name_new_in_sync_is_not_reachable_from_the_top_level() -> None:
    with pytest.raises(AttributeError):
        gainsight_segment.ConcurrentSyncError  # type: ignore[attr-defined]  # noqa: B018


def test_an_unknown_top_level_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        gainsight_segment.Nope  # type: ignore[attr-defined]  # noqa: B018


def test_importing_the_package_loads_none_of_the_tools() -> None:
    tools = [
        "sqlite3",
        "gainsight_segment.sync",
        "gainsight_segment.cli",
        "gainsight_segment.testing",
    ]
    code = f"import sys, gainsight_segment; print([m for m in {tools!r} if m in sys.modules])"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
