"""MkDocs hook: keep pages that are still being written out of the built nav.

A few pages are written by other contributors and may not exist yet. ``mkdocs.yml`` lists them
in the nav anyway; this hook drops the ones whose file is missing (and any section left empty)
before the build, so that ``mkdocs build --strict`` passes either way. Only the pages named in
``OPTIONAL_PAGES`` are ever dropped: a missing page of any other name still fails the build.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

OPTIONAL_PAGES = frozenset(
    {"audiences.md", "cli.md", "performance.md", "reliability.md", "testing.md"}
)

log = logging.getLogger("mkdocs.hooks.optional_pages")


def _prune(items: list[Any], docs_dir: Path) -> list[Any]:
    kept: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            title, value = next(iter(item.items()))
            if isinstance(value, list):
                value = _prune(value, docs_dir)
                if value:
                    kept.append({title: value})
                continue
            if value in OPTIONAL_PAGES and not (docs_dir / value).is_file():
                log.info("docs/%s does not exist yet: left out of the nav", value)
                continue
        kept.append(item)
    return kept


def on_config(config: Any) -> Any:
    """Drop the optional pages that do not exist from ``config.nav``."""
    if config.nav:
        config.nav = _prune(config.nav, Path(config.docs_dir))
    return config
