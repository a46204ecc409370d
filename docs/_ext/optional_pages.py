"""MkDocs hook: keep pages that are still being written out of the built nav.

A few pages are written by other contributors and may not exist yet. ``mkdocs.yml`` lists them
in the nav anyway; this hook drops the ones whose file is missing (and any section left empty)
before the build, and turns the links other pages make to them into plain text, so that
``mkdocs build --strict`` passes either way. Only the pages named in ``OPTIONAL_PAGES`` are ever
dropped: a missing page of any other name, or a link to one, still fails the build.
"""

from __future__ import annotations

import logging
import posixpath
import re
from pathlib import Path
from typing import Any

OPTIONAL_PAGES = frozenset(
    {"audiences.md", "cli.md", "outbox.md", "performance.md", "reliability.md", "testing.md"}
)

# An inline Markdown link to a page, with an optional anchor: [text](target.md#anchor)
_LINK = re.compile(r"\[(?P<text>[^\]\n]+)\]\((?P<target>[^)\s#]+\.md)(?:#[^)\s]*)?\)")

log = logging.getLogger("mkdocs.hooks.optional_pages")


def _missing(config: Any) -> set[str]:
    docs_dir = Path(config.docs_dir)
    return {page for page in OPTIONAL_PAGES if not (docs_dir / page).is_file()}


def _prune(items: list[Any], missing: set[str]) -> list[Any]:
    kept: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            title, value = next(iter(item.items()))
            if isinstance(value, list):
                value = _prune(value, missing)
                if value:
                    kept.append({title: value})
                continue
            if value in missing:
                log.info("docs/%s does not exist yet: left out of the nav", value)
                continue
        kept.append(item)
    return kept


def on_config(config: Any) -> Any:
    """Drop the optional pages that do not exist from ``config.nav``."""
    if config.nav:
        config.nav = _prune(config.nav, _missing(config))
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, **kwargs: Any) -> str:
    """Show a link to an optional page that does not exist as its text alone."""
    missing = _missing(config)
    if not missing:
        return markdown
    here = posixpath.dirname(page.file.src_uri)

    def unlink(match: re.Match[str]) -> str:
        target = posixpath.normpath(posixpath.join(here, match["target"]))
        if target in missing:
            log.info("%s: docs/%s does not exist yet: link left out", page.file.src_uri, target)
            return match["text"]
        return match[0]

    return _LINK.sub(unlink, markdown)
