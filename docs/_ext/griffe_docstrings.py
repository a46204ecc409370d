"""Griffe extension: render the reStructuredText habits of the docstrings as Markdown.

The package's docstrings are Google style, as Sphinx's napoleon reads it, and mkdocstrings
renders them as Markdown. Three napoleon habits would show badly, so before rendering this
extension rewrites, in the package's docstrings only:

- Sphinx roles such as ``:class:`Client``` or ``:meth:`stats``` into autorefs links to the
  object's public path (``gainsight_segment.Client.stats`` rather than
  ``gainsight_segment._client.Client.stats``), or into inline code when the object is not part
  of the documented public API;
- an ``Example:`` section heading into ``Examples:``, the one griffe parses as doctest
  examples (it renders ``Example:`` as an admonition of Markdown, mangling ``>>>`` lines);
- a reStructuredText literal-block marker (a paragraph ending in ``::``) into a plain colon:
  the indented block after it is already a Markdown code block.

It also makes signatures readable without the source at hand: a default that names a module
constant (``timeout=DEFAULT_TIMEOUT``) shows the constant's value (``timeout=10.0``), and a
private type alias in an annotation (``user_id: Id | None``) shows what it stands for.

And it fills two gaps of the reference pages:

- an instance attribute set from an ``__init__`` parameter of the same name
  (``self.status = status``) takes that parameter's annotation, so that the class's
  ``Attributes`` section shows its type;
- an enumeration's members are shown as one table (member, value, meaning) in the class's
  docstring instead of one entry each; a link to a member goes to the enumeration.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import griffe

PACKAGE = "gainsight_segment"
# Modules whose ``__all__`` names are documented under docs/api/.
PUBLIC_MODULES = (
    PACKAGE,
    f"{PACKAGE}.transport",
    f"{PACKAGE}.outbox",
    f"{PACKAGE}.sync",
    f"{PACKAGE}.testing",
)
_ENUM_BASES = frozenset({"enum.Enum", "enum.IntEnum", "enum.StrEnum", "enum.Flag", "enum.IntFlag"})

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|data|exc|obj|mod):`(~?)([\w.]+)(?:\(\))?`")
_EXAMPLE_HEADING = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)
_LITERAL_MARKER = re.compile(r"(?<=\S)::[ \t]*$(?=\n[ \t]*\n)", re.MULTILINE)


def _walk(obj: griffe.Object) -> Iterator[griffe.Object]:
    yield obj
    for member in obj.members.values():
        if not member.is_alias and member.parent is obj:
            yield from _walk(member)  # type: ignore[arg-type]


class SphinxRolesToAutorefs(griffe.Extension):
    """Rewrite the docstrings of the package as described in the module docstring."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if pkg.path != PACKAGE:
            return
        public = self._public_paths(pkg)
        folded: dict[str, str] = {}
        for obj in list(_walk(pkg)):
            if obj.is_class:
                _type_attributes_from_init(obj)  # type: ignore[arg-type]
                folded.update(_fold_enum_members(obj))  # type: ignore[arg-type]
        self._folded = folded
        for obj in _walk(pkg):
            if obj.docstring is None:
                continue
            text = _ROLE.sub(
                lambda match, obj=obj: self._link(match, obj, pkg, public), obj.docstring.value
            )
            text = _EXAMPLE_HEADING.sub(r"\1Examples:", text)
            obj.docstring.value = _LITERAL_MARKER.sub(":", text)
        for obj in _walk(pkg):
            if obj.is_function:
                for parameter in obj.parameters:  # type: ignore[attr-defined]
                    parameter.default = _constant_value(parameter.default, pkg)
                    parameter.annotation = _modernize(_expand_aliases(parameter.annotation, pkg))
                returns = _expand_aliases(obj.returns, pkg)  # type: ignore[attr-defined]
                obj.returns = _modernize(returns)  # type: ignore[attr-defined]
            elif obj.is_attribute:
                obj.annotation = _modernize(obj.annotation)  # type: ignore[attr-defined]

    @staticmethod
    def _public_paths(pkg: griffe.Module) -> dict[str, str]:
        """Map the canonical path of each exported object to its public path."""
        paths: dict[str, str] = {}
        for module_path in PUBLIC_MODULES:
            try:
                module = pkg.get_member(module_path.removeprefix(PACKAGE).lstrip("."))
            except (KeyError, ValueError):
                module = pkg if module_path == PACKAGE else None
            if module is None:
                continue
            for name in module.exports or ():
                member = module.members.get(str(name))
                if member is None:
                    continue
                try:
                    canonical = member.final_target.path if member.is_alias else member.path
                except griffe.AliasResolutionError:
                    continue
                # The first module listed wins: gainsight_segment.Client, not testing's import.
                paths.setdefault(canonical, f"{module_path}.{name}")
        return paths

    @staticmethod
    def _find(target: str, obj: griffe.Object, pkg: griffe.Module) -> str | None:
        scopes: list[griffe.Object] = []
        scope: griffe.Object | None = obj
        while scope is not None:
            scopes.append(scope)
            scope = scope.parent
        for scope in scopes:
            base = scope.path if scope.is_module or scope.is_class else None
            if base is None:
                continue
            candidate = f"{base}.{target}"
            found = _lookup(candidate, pkg)
            if found is not None:
                return found
        return _lookup(target, pkg) or _lookup(f"{PACKAGE}.{target}", pkg)

    def _link(
        self, match: re.Match[str], obj: griffe.Object, pkg: griffe.Module, public: dict[str, str]
    ) -> str:
        short, target = match.group(1), match.group(2)
        text = target.rsplit(".", 1)[-1] if short else target
        canonical = self._find(target, obj, pkg)
        if canonical is None and "." in target:
            # A member folded into its enumeration's table: link to the enumeration.
            owner, _, name = target.rpartition(".")
            found = self._find(owner, obj, pkg)
            if found is not None and f"{found}.{name}" in self._folded:
                canonical = found
        if canonical is not None:
            canonical = _rendered(canonical, pkg)
            for prefix in sorted(public, key=len, reverse=True):
                if canonical == prefix or canonical.startswith(prefix + "."):
                    return f"[`{text}`][{public[prefix]}{canonical[len(prefix) :]}]"
        return f"`{text}`"


def _rendered(canonical: str, pkg: griffe.Module) -> str:
    """The path of the entry that shows ``canonical``: an attribute's own, or its class's.

    An attribute with no docstring of its own has no entry (it is described in its class's
    ``Attributes`` section, if anywhere), so a link to it goes to its class.
    """
    obj = pkg.modules_collection.get_member(canonical)
    parent = getattr(obj, "parent", None)
    if obj is not None and obj.is_attribute and obj.docstring is None and parent is not None:
        return str(parent.path) if parent.is_class else canonical
    return canonical


def _is_enum(cls: griffe.Class) -> bool:
    for base in cls.bases:
        try:
            path = base.canonical_path if isinstance(base, griffe.Expr) else str(base)
        except Exception:  # an unresolvable base is not an enumeration's
            continue
        if path in _ENUM_BASES:
            return True
    return False


def _fold_enum_members(cls: griffe.Class) -> dict[str, str]:
    """Replace an enumeration's member entries by a table in its docstring.

    Returns the path of each member removed, mapped to the enumeration's path.
    """
    if not _is_enum(cls) or cls.docstring is None:
        return {}
    members = [
        member
        for member in cls.members.values()
        if not member.is_alias
        and member.is_attribute
        and member.name.isupper()
        and member.value is not None
    ]
    if not members:
        return {}
    rows = ["| Member | Value | Meaning |", "| --- | --- | --- |"]
    for member in members:
        meaning = " ".join((member.docstring.value if member.docstring else "").split())
        rows.append(f"| `{member.name}` | `{member.value}` | {meaning} |")
        cls.del_member(member.name)
    cls.docstring.value = cls.docstring.value.rstrip() + "\n\n" + "\n".join(rows) + "\n"
    return {member.path: cls.path for member in members}


def _type_attributes_from_init(cls: griffe.Class) -> None:
    """Give ``self.name = name`` in ``__init__`` the annotation of the parameter ``name``."""
    init = cls.members.get("__init__")
    if init is None or init.is_alias or not init.is_function:
        return
    annotations = {
        parameter.name: parameter.annotation
        for parameter in init.parameters  # type: ignore[union-attr]
        if parameter.annotation is not None
    }
    for member in cls.members.values():
        if member.is_alias or not member.is_attribute or member.annotation is not None:
            continue
        if str(member.value) == member.name and member.name in annotations:
            member.annotation = annotations[member.name]


def _lookup(path: str, pkg: griffe.Module) -> str | None:
    """Return the canonical path of the object at ``path``, or ``None``."""
    if path != PACKAGE and not path.startswith(PACKAGE + "."):
        return None
    parts = path.split(".")[1:]
    current: griffe.Object | griffe.Alias = pkg
    try:
        for part in parts:
            current = current.members[part]
            if current.is_alias:
                current = current.final_target  # type: ignore[union-attr]
    except (KeyError, griffe.AliasResolutionError):
        return None
    return current.path


def _target(expr: object, pkg: griffe.Module) -> griffe.Object | None:
    """The package attribute that a name expression refers to, if any."""
    if not isinstance(expr, griffe.ExprName):
        return None
    try:
        path = expr.canonical_path
    except Exception:  # an unresolvable name is simply left as it is
        return None
    canonical = _lookup(path, pkg)
    if canonical is None:
        return None
    obj = pkg.modules_collection.get_member(canonical)
    return obj if obj is not None and obj.is_attribute else None


def _constant_value(default: object, pkg: griffe.Module) -> object:
    """The literal value of a constant used as a default, e.g. ``10.0`` for ``DEFAULT_TIMEOUT``."""
    target = _target(default, pkg)
    if target is not None and target.name.isupper() and isinstance(target.value, str):
        return target.value
    return default


def _modernize(expr: object) -> object:
    """``Union[X, Y]`` and ``Optional[X]`` as ``X | Y`` and ``X | None``, at any depth.

    mkdocstrings' ``modernize_annotations`` rewrites only the outermost expression: a
    ``Union`` inside ``... | None`` (as a type alias expands) would keep its old spelling.
    """
    if not (isinstance(expr, griffe.Expr) and dataclasses.is_dataclass(expr)):
        return expr
    for field in dataclasses.fields(expr):
        value = getattr(expr, field.name)
        if isinstance(value, griffe.Expr):
            setattr(expr, field.name, _modernize(value))
        elif isinstance(value, list):
            setattr(expr, field.name, [_modernize(item) for item in value])
    return expr.modernize()


def _expand_aliases(expr: object, pkg: griffe.Module, depth: int = 0) -> object:
    """Replace the package's type aliases (``Id``, ``Properties``, ...) by what they stand for."""
    target = _target(expr, pkg)
    if (
        target is not None
        and depth < 5
        and target.name[:1].isupper()
        and not target.name.isupper()
        and isinstance(target.value, griffe.Expr)
    ):
        return _expand_aliases(target.value, pkg, depth + 1)
    if isinstance(expr, griffe.Expr) and dataclasses.is_dataclass(expr):
        for field in dataclasses.fields(expr):
            value = getattr(expr, field.name)
            if isinstance(value, griffe.Expr):
                setattr(expr, field.name, _expand_aliases(value, pkg, depth))
            elif isinstance(value, list):
                setattr(expr, field.name, [_expand_aliases(item, pkg, depth) for item in value])
    return expr
