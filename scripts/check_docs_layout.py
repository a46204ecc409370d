#!/usr/bin/env python3
"""Check that every page of the documentation site fits its column in a real browser.

Builds the site (or takes one already built), serves it on loopback, loads every page in
headless Chromium at 1280 x 900 and fails, listing each of them, when a code block, an API
signature, a table or a Mermaid diagram is wider than its box (its ``scrollWidth`` exceeds its
``clientWidth`` by more than 1 px, so that it scrolls sideways) or sticks out of the content
column, or when the page itself scrolls sideways::

    python scripts/check_docs_layout.py                    # build with mkdocs, then check
    python scripts/check_docs_layout.py --site-dir site    # check a site already built
    python scripts/check_docs_layout.py --heights          # also print each page's height

It needs Chromium (Debian: ``apt-get install chromium``) and nothing from PyPI: it speaks the
DevTools protocol to the browser over a pipe (``scripts/chromium.py``). Material for MkDocs
loads Mermaid from unpkg.com, which a machine without internet cannot reach, so requests for it
are answered with the same release fetched once from the npm registry (``npm pack``) into a
cache directory, or from ``--mermaid-js FILE``; every other request that does not go to the
loopback server is refused, so the check never depends on the network. Web fonts are refused
too: code is measured in the browser's fallback monospace font, whose glyphs have the same
width (0.6 em) as Roboto Mono's.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chromium import PAGE_TIMEOUT, Browser, CheckError, find_chromium

ROOT = Path(__file__).resolve().parent.parent
MERMAID_URL = re.compile(r"https://unpkg\.com/mermaid@([^/]+)/dist/mermaid\.min\.js")

# Runs in each page once it has loaded and its diagrams are drawn. A code block scrolls in its
# <code> (Material sets overflow on it), a table in itself or in Material's scroll wrapper.
MEASURE = r"""
(() => {
  const column = document.querySelector(".md-content__inner") || document.body;
  // Material lets tables and code blocks reach into the column's margin, not beyond it.
  const limit = (column.parentElement || column).getBoundingClientRect().right;
  const headings = [...column.querySelectorAll("h1, h2, h3, h4, h5, h6")];
  const where = (el) => {
    let found = "";
    for (const h of headings) {
      if (h.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING) {
        found = h.textContent.replace(/[¶#]\s*$/, "").trim();
      }
    }
    return found;
  };
  const kindOf = (el) => {
    if (el.closest(".doc-signature")) return "signature";
    if (el.matches(".mermaid, .mermaid *")) return "diagram";
    if (el.matches("table, .md-typeset__scrollwrap, .md-typeset__table")) return "table";
    return "code block";
  };
  const seen = new Set();
  const problems = [];
  const targets = column.querySelectorAll(
    "pre, pre > code, .highlight, table, .md-typeset__scrollwrap, div.mermaid, pre.mermaid"
  );
  for (const el of targets) {
    const box = el.closest(".highlight, .md-typeset__scrollwrap, .mermaid") || el;
    const rect = el.getBoundingClientRect();
    const scrolls = el.scrollWidth - el.clientWidth;
    const sticksOut = rect.right - limit;
    if (scrolls <= 1 && sticksOut <= 1) continue;
    if (seen.has(box)) continue;
    seen.add(box);
    problems.push({
      kind: kindOf(el),
      section: where(box),
      text: (el.innerText || "").trim().split("\n")[0].slice(0, 60),
      scrollWidth: el.scrollWidth,
      clientWidth: el.clientWidth,
      sticksOut: Math.max(0, Math.round(sticksOut)),
    });
  }
  const page = document.documentElement;
  return {
    problems,
    pageScrollWidth: page.scrollWidth,
    viewportWidth: page.clientWidth,
    height: document.body.scrollHeight,
  };
})()
"""

DIAGRAMS_DRAWN = r"""
(() => {
  const left = document.querySelectorAll("pre.mermaid, .mermaid > code").length;
  return left === 0 && document.querySelectorAll("div.mermaid").length >= %d;
})()
"""


class Interceptor:
    """Answers the page's requests: loopback goes through, Mermaid from a local copy, no more."""

    def __init__(self, mermaid: Path | None) -> None:
        self._mermaid = mermaid
        self.refused: set[str] = set()

    def __call__(self, browser: Browser, event: dict[str, Any]) -> None:
        params, session = event["params"], event.get("sessionId")
        url = params["request"]["url"]
        host = urlsplit(url).hostname or ""
        if host in ("127.0.0.1", "localhost") or url.startswith("data:"):
            browser.notify("Fetch.continueRequest", {"requestId": params["requestId"]}, session)
        elif MERMAID_URL.fullmatch(url) and self._mermaid is not None:
            body = base64.b64encode(self._mermaid.read_bytes()).decode()
            headers = [{"name": "Content-Type", "value": "text/javascript"}]
            browser.notify(
                "Fetch.fulfillRequest",
                {
                    "requestId": params["requestId"],
                    "responseCode": 200,
                    "responseHeaders": headers,
                    "body": body,
                },
                session,
            )
        else:
            self.refused.add(host)
            browser.notify(
                "Fetch.failRequest",
                {"requestId": params["requestId"], "errorReason": "BlockedByClient"},
                session,
            )


# The site -------------------------------------------------------------------------------------


def build_site(target: Path) -> None:
    print(f"building the site into {target}", flush=True)
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet"]
    result = subprocess.run([*command, "--site-dir", str(target)], cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        raise CheckError("mkdocs build --strict failed")


def site_pages(site: Path) -> list[str]:
    pages = sorted(
        path.relative_to(site).parent.as_posix()
        for path in site.rglob("index.html")
        if not path.relative_to(site).parts[0].startswith(("assets", "search"))
    )
    if not pages:
        raise CheckError(f"no pages in {site}")
    return ["" if page == "." else page + "/" for page in pages]


def count_diagrams(site: Path, page: str) -> int:
    html = (site / page / "index.html").read_text(encoding="utf-8")
    return len(re.findall(r"<pre class=\"mermaid\"", html))


def mermaid_version(site: Path) -> str | None:
    for script in (site / "assets" / "javascripts").glob("bundle.*.js"):
        found = MERMAID_URL.search(script.read_text(encoding="utf-8"))
        if found:
            return found.group(1)
    return None


def fetch_mermaid(version: str) -> Path:
    """Mermaid's script, from the npm registry, cached under the user's cache directory."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "docs-layout"
    cached = cache / f"mermaid@{version}.min.js"
    if cached.is_file():
        return cached
    npm = shutil.which("npm")
    if npm is None:
        raise CheckError(
            "the site draws Mermaid diagrams and npm is not installed to fetch Mermaid; "
            "install npm or pass --mermaid-js FILE"
        )
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        result = subprocess.run(
            [npm, "pack", f"mermaid@{version}", "--silent", "--pack-destination", work],
            capture_output=True,
            text=True,
            check=False,
        )
        tarballs = list(Path(work).glob("mermaid-*.tgz"))
        if result.returncode != 0 or not tarballs:
            raise CheckError(f"npm pack mermaid@{version} failed:\n{result.stderr}")
        with tarfile.open(tarballs[0]) as tarball:
            member = tarball.extractfile("package/dist/mermaid.min.js")
            if member is None:
                raise CheckError(f"{tarballs[0].name} has no dist/mermaid.min.js")
            partial = cached.with_suffix(".part")
            partial.write_bytes(member.read())
            partial.replace(cached)
    return cached


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve(site: Path) -> Iterator[str]:
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# The check ------------------------------------------------------------------------------------


def measure(
    browser: Browser, session: str, url: str, diagrams: int, screenshot: Path | None
) -> dict[str, Any]:
    browser.call("Page.navigate", {"url": url}, session)
    browser.wait_for("Page.loadEventFired", session)
    deadline = time.monotonic() + PAGE_TIMEOUT
    while not browser.evaluate(DIAGRAMS_DRAWN % diagrams, session):
        if time.monotonic() > deadline:
            raise CheckError(f"{url}: its {diagrams} Mermaid diagram(s) were not drawn")
        time.sleep(0.05)
    browser.evaluate("document.fonts.ready.then(() => true)", session)
    result: dict[str, Any] = browser.evaluate(MEASURE, session)
    if screenshot is not None:
        shot = browser.call(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session
        )
        screenshot.write_bytes(base64.b64decode(shot["data"]))
    return result


def open_tab(browser: Browser, width: int, height: int) -> str:
    """A new tab at ``width`` x ``height`` whose requests go through the interceptor."""
    target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session: str = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
        "sessionId"
    ]
    browser.call("Page.enable", {}, session)
    browser.call("Fetch.enable", {"patterns": [{"urlPattern": "*"}]}, session)
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
        session,
    )
    return session


def page_problems(result: dict[str, Any]) -> list[dict[str, Any]]:
    """What is too wide on a measured page, the page itself included."""
    problems: list[dict[str, Any]] = result["problems"]
    if result["pageScrollWidth"] > result["viewportWidth"] + 1:
        problems.append(
            {
                "kind": "page",
                "section": "",
                "text": "the page scrolls sideways",
                "scrollWidth": result["pageScrollWidth"],
                "clientWidth": result["viewportWidth"],
                "sticksOut": 0,
            }
        )
    return problems


def describe(page: str, problem: dict[str, Any]) -> str:
    out = f", {problem['sticksOut']} px out of the column" if problem["sticksOut"] else ""
    return (
        f'{page or "/"}: {problem["kind"]} in "{problem["section"]}" ({problem["text"]!r}): '
        f"{problem['scrollWidth']} px wide in {problem['clientWidth']} px{out}"
    )


def check(args: argparse.Namespace, site: Path) -> int:
    pages = site_pages(site)
    if args.page:
        pages = [page for page in pages if any(page.startswith(p) for p in args.page)]
    diagrams = {page: count_diagrams(site, page) for page in pages}
    mermaid = args.mermaid_js
    if mermaid is None and any(diagrams.values()):
        version = mermaid_version(site)
        if version is None:
            raise CheckError("the site has diagrams but its theme names no Mermaid release")
        mermaid = fetch_mermaid(version)
    browser = Browser(find_chromium(args.chromium), Interceptor(mermaid))
    failures = 0
    heights: dict[str, int] = {}
    try:
        session = open_tab(browser, args.width, args.height)
        with serve(site) as base:
            for page in pages:
                shot = None
                if args.screenshots:
                    args.screenshots.mkdir(parents=True, exist_ok=True)
                    shot = args.screenshots / f"{page.strip('/').replace('/', '-') or 'index'}.png"
                result = measure(browser, session, base + page, diagrams[page], shot)
                heights[page or "/"] = result["height"]
                for problem in page_problems(result):
                    failures += 1
                    print(describe(page, problem), flush=True)
    finally:
        browser.close()
    if args.heights:
        print(f"\npage heights at {args.width}x{args.height} (document.body.scrollHeight):")
        for page, height in heights.items():
            print(f"  {height:>7,} px  {page}")
    if failures:
        print(f"\n{failures} element(s) wider than their box in {len(pages)} pages", flush=True)
        return 1
    print(f"{len(pages)} pages at {args.width} px: every block fits its column", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site-dir", type=Path, help="a built site (default: build one)")
    parser.add_argument("--chromium", help="the browser to run (default: found on PATH)")
    parser.add_argument("--mermaid-js", type=Path, help="Mermaid's mermaid.min.js to serve")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--page", action="append", help="only the pages under this path")
    parser.add_argument("--heights", action="store_true", help="print each page's height")
    parser.add_argument("--screenshots", type=Path, help="save a full-page PNG of each page")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        if args.site_dir is not None:
            status = check(args, args.site_dir.resolve())
        else:
            with tempfile.TemporaryDirectory(prefix="docs-layout-site-") as work:
                build_site(Path(work))
                status = check(args, Path(work))
    except CheckError as error:
        print(f"check_docs_layout: {error}", file=sys.stderr)
        return 2
    print(f"({time.monotonic() - started:.1f} s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
