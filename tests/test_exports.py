"""The public API is exactly what docs/api.md documents, and every part of it is documented.

The API page is the list: each public name has a ``::: gainsight_segment.NAME`` entry there, so
adding a name to ``__all__`` without documenting it (or the reverse) fails here.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

import gainsight_segment
from gainsight_segment import _version

API_PAGE = Path(__file__).resolve().parent.parent / "docs" / "api.md"
_ENTRY = re.compile(r"^:::[ \t]+(gainsight_segment(?:\.[A-Za-z_][A-Za-z0-9_]*)*)[ \t]*$", re.M)


def documented() -> list[str]:
    """The targets of the ``:::`` entries of the API page, in page order."""
    return _ENTRY.findall(API_PAGE.read_text(encoding="utf-8"))


def documented_names() -> set[str]:
    """The names documented as ``gainsight_segment.NAME``, submodules such as ``testing`` aside."""
    package = Path(gainsight_segment.__file__).parent
    names = set()
    for target in documented():
        name = target.removeprefix("gainsight_segment.")
        if name != target and "." not in name and not (package / f"{name}.py").exists():
            names.add(name)
    return names


def test_all_is_sorted() -> None:
    assert gainsight_segment.__all__ == sorted(gainsight_segment.__all__)


def test_all_has_no_duplicates() -> None:
    assert len(set(gainsight_segment.__all__)) == len(gainsight_segment.__all__)


def test_all_is_exactly_what_the_api_page_documents() -> None:
    assert set(gainsight_segment.__all__) == documented_names()


def test_each_name_is_documented_once() -> None:
    entries = documented()
    assert len(entries) == len(set(entries))


def test_the_testing_helpers_are_documented_whole() -> None:
    assert "gainsight_segment.testing" in documented()
    testing = importlib.import_module("gainsight_segment.testing")
    assert testing.__all__ == sorted(testing.__all__)
    for name in testing.__all__:
        assert hasattr(testing, name), name


@pytest.mark.parametrize("name", gainsight_segment.__all__)
def test_name_is_importable(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from gainsight_segment import {name}", namespace)
    assert namespace[name] is getattr(gainsight_segment, name)


@pytest.mark.parametrize(
    "name", [name for name in gainsight_segment.__all__ if name != "__version__"]
)
def test_name_has_its_own_docstring(name: str) -> None:
    obj = getattr(gainsight_segment, name)
    # __doc__ itself, not inspect.getdoc(): a class must not borrow its base class's docstring.
    assert (obj.__doc__ or "").strip(), f"{name} has no docstring"


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
        (name, member_name)
        for name in gainsight_segment.__all__
        if inspect.isclass(getattr(gainsight_segment, name))
        for member_name, _ in _public_members(getattr(gainsight_segment, name))
    ],
)
def test_public_method_has_a_docstring(owner: str, member: str) -> None:
    obj = vars(getattr(gainsight_segment, owner))[member]
    function = obj.__func__ if isinstance(obj, (classmethod, staticmethod)) else obj
    assert (function.__doc__ or "").strip(), f"{owner}.{member} has no docstring"


def test_version_is_the_single_source() -> None:
    assert gainsight_segment.__version__ == _version.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?", _version.__version__)
