"""Where the time goes: our caller path (``track()``) and sender path (one delivery).

Setup as for ``benchmarks/run.py``, then:

    benchmarks/.venv/bin/python benchmarks/profile_paths.py [--calls N] [--sends N]
        [--top N] [--pyinstrument]

It starts ``benchmarks/fastserver.py`` in its own process and prints:

1. Per-message CPU costs measured without a profiler (medians of 5 rounds): building alone,
   ``track()`` with ``send=False``, ``track()`` queueing while the senders are idle, each
   SDK's background-thread CPU per delivered message (ours with one sender thread and with
   the default number), and a bare urllib3 request.
2. cProfile of ``track()`` on the caller's thread, of our sender thread delivering
   ``--sends`` messages, and of a bare urllib3 loop, each with its own time summed per layer
   (ours, requests, urllib3, http.client, socket calls, ...). Profiled times include
   cProfile's overhead: read the shares, not the absolute numbers. With ``--pyinstrument``,
   call trees of the caller path and of the bare loop as well.

To profile a given commit rather than the working tree, export it and put it first on the
path: ``git archive REV gainsight_segment | tar -x -C DIR``, then run this script with
``PYTHONPATH=DIR``.

Only public API is used: background threads are profiled by wrapping
``threading.Thread.run`` for threads named ``gainsight-segment-sender-*`` (ours) or of
Segment's ``Consumer`` class, so the script survives refactors of the library's internals.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import inspect
import io
import os
import pstats
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gainsight_segment as gs

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from workloads import ACCESS_KEY, EVENT, EVENT_PATH, USER_ID, properties  # noqa: E402

_SENDER_PREFIX = "gainsight-segment-sender-"


@contextlib.contextmanager
def fast_server(stall: bool = False) -> Iterator[str]:
    command = [sys.executable, str(HERE / "fastserver.py")]
    if stall:
        command.append("--stall")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield f"http://127.0.0.1:{int(process.stdout.readline())}"
    finally:
        process.terminate()
        process.wait()


class ThreadWatch:
    """Times (thread CPU clock), and optionally profiles, the threads that ``wanted`` picks.

    Wraps ``cls.run``: ``threading.Thread`` for threads made with a ``target`` (ours), or a
    subclass that overrides ``run`` (Segment's ``Consumer``).
    """

    def __init__(
        self,
        wanted: Callable[[threading.Thread], bool],
        profile: bool,
        cls: type[threading.Thread] = threading.Thread,
    ) -> None:
        self.wanted = wanted
        self.profile = profile
        self.cpu_seconds = 0.0
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()
        self._cls = cls
        self._original = cls.run

    def __enter__(self) -> ThreadWatch:
        watch, original = self, self._original

        def run(thread: threading.Thread) -> None:
            if not watch.wanted(thread):
                original(thread)
                return
            profiler = cProfile.Profile() if watch.profile else None
            started = time.thread_time()
            if profiler is not None:
                profiler.enable()
            try:
                original(thread)
            finally:
                if profiler is not None:
                    profiler.disable()
                with watch._lock:
                    watch.cpu_seconds += time.thread_time() - started
                    if profiler is not None:
                        watch.profiles.append(profiler)

        self._cls.run = run  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._cls.run = self._original  # type: ignore[method-assign]


def per_call_cpu_us(function: Callable[[], Any], count: int, rounds: int = 5) -> float:
    """Median over ``rounds`` of this thread's CPU microseconds per call of ``function``."""
    samples = []
    for _ in range(rounds):
        started = time.thread_time()
        for _ in range(count):
            function()
        samples.append((time.thread_time() - started) / count * 1e6)
    return statistics.median(samples)


def _layer(path: str, function: str) -> str:
    """Which layer a profiled function belongs to, from its file (or C function name)."""
    if "sendall" in function or "recv_into" in function:
        return "socket calls (sendall, recv_into)"
    for marker, layer in (
        ("gainsight_segment", "gainsight_segment"),
        ("/requests/", "requests"),
        ("/urllib3/", "urllib3"),
        ("http/client.py", "http.client + email (headers)"),
        ("/email/", "http.client + email (headers)"),
        ("/segment/", "segment (analytics-python)"),
        ("urllib/parse.py", "urllib.parse"),
        ("json", "json"),
        ("threading.py", "threading / queue / locks"),
        ("queue.py", "threading / queue / locks"),
        ("profile_paths.py", "benchmark harness"),
    ):
        if marker in path:
            return layer
    if "lock" in function or "SimpleQueue" in function:
        return "threading / queue / locks"
    return "other stdlib / builtins"


def profile_report(stats: pstats.Stats, count: int, top: int) -> str:
    """Own CPU time per layer, then the top functions by own time."""
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    layers: dict[str, float] = {}
    total = 0.0
    for (path, _, function), (_, _, own, *_) in raw.items():
        layer = _layer(path, function)
        layers[layer] = layers.get(layer, 0.0) + own
        total += own
    lines = ["| layer | own time, us per message (profiled) | share |", "|---|---|---|"]
    for layer, own in sorted(layers.items(), key=lambda item: -item[1]):
        lines.append(f"| {layer} | {own / count * 1e6:.1f} | {own / total:.0%} |")
    lines.append(f"| **total** | **{total / count * 1e6:.1f}** | |")
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    return "\n".join(lines) + "\n\n```\n" + out.getvalue().strip() + "\n```\n"


def profile_calls(function: Callable[[], Any], count: int, top: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        function()
    profiler.disable()
    return profile_report(pstats.Stats(profiler), count, top)


def pyinstrument_text(function: Callable[[], Any], count: int) -> str:
    try:
        from pyinstrument import Profiler
    except ImportError:
        return "(pyinstrument is not installed)"
    profiler = Profiler(interval=0.0001)
    profiler.start()
    for _ in range(count):
        function()
    profiler.stop()
    return str(profiler.output_text(unicode=False, color=False, show_all=False))


def is_sender(thread: threading.Thread) -> bool:
    return thread.name.startswith(_SENDER_PREFIX)


def is_any(thread: threading.Thread) -> bool:
    return True


def deliver_ours(
    endpoint: str, sends: int, profile: bool, workers: int = 1
) -> tuple[float, int, ThreadWatch]:
    """Our sender threads' CPU seconds for ``sends`` messages, and the watch."""
    with ThreadWatch(is_sender, profile=profile) as watch:
        client = gs.Client(
            ACCESS_KEY, endpoint=endpoint, workers=workers, max_queue_size=sends + 100
        )
        props = properties(0)
        for _ in range(sends):
            client.track(USER_ID, EVENT, props)
        client.shutdown()
    return watch.cpu_seconds, client.stats().delivered, watch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="track() calls to profile")
    parser.add_argument("--sends", type=int, default=3_000, help="deliveries to profile")
    parser.add_argument("--top", type=int, default=25, help="cProfile rows to show")
    parser.add_argument("--pyinstrument", action="store_true", help="also show call trees")
    args = parser.parse_args()
    props = properties(0)
    builder = gs.MessageBuilder()
    costs: list[tuple[str, float]] = []
    sections: list[str] = []

    costs.append(
        (
            "caller: `MessageBuilder.track()` (validate + serialize)",
            per_call_cpu_us(lambda: builder.track(USER_ID, EVENT, props), args.calls // 5),
        )
    )
    with gs.Client(ACCESS_KEY, send=False) as dry:
        costs.append(
            (
                "caller: `Client.track()`, `send=False`",
                per_call_cpu_us(lambda: dry.track(USER_ID, EVENT, props), args.calls // 5),
            )
        )

    with fast_server(stall=True) as stalled:
        # The senders wait on a server that never answers: nothing competes with the caller.
        client = gs.Client(
            ACCESS_KEY, endpoint=stalled, max_queue_size=10 * args.calls, exit_timeout=0
        )
        costs.append(
            (
                "caller: ours `Client.track()`, async, senders idle",
                per_call_cpu_us(lambda: client.track(USER_ID, EVENT, props), args.calls // 5),
            )
        )
        from segment.analytics import Client as PeerClient

        peer = PeerClient("benchmark-write-key", host=stalled, max_queue_size=10 * args.calls)
        costs.append(
            (
                "caller: Segment `Client.track()`, async, consumer idle",
                per_call_cpu_us(lambda: peer.track(USER_ID, EVENT, props), args.calls // 5),
            )
        )
        sections.append(
            f"## cProfile: our `Client.track()` x {args.calls:,}, caller thread\n\n"
            + profile_calls(lambda: client.track(USER_ID, EVENT, props), args.calls, args.top)
        )
        sections.append(
            f"## cProfile: Segment's `Client.track()` x {args.calls:,}, caller thread\n\n"
            + profile_calls(lambda: peer.track(USER_ID, EVENT, props), args.calls, 12)
        )
        if args.pyinstrument:
            sections.append(
                "## pyinstrument: our `Client.track()`\n\n```\n"
                + pyinstrument_text(lambda: client.track(USER_ID, EVENT, props), args.calls)
                + "\n```\n"
            )

    with fast_server() as endpoint:
        import urllib3
        from segment.analytics import Client as PeerClient
        from segment.analytics.consumer import Consumer

        body = builder.track(USER_ID, EVENT, props).body_sent_at("2024-01-01T00:00:00.000Z")
        port = int(endpoint.rsplit(":", 1)[1])
        pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1, retries=False)
        headers = {
            "accessKey": ACCESS_KEY,
            "Content-Type": "application/json",
            "User-Agent": "gainsight-segment-python/benchmark",
            "Accept": "*/*",
            "Connection": "keep-alive",
        }

        def raw() -> None:
            pool.urlopen("POST", EVENT_PATH, body=body, headers=headers, redirect=False)

        def peer_consumer_cpu() -> float:
            with ThreadWatch(is_any, profile=False, cls=Consumer) as peer_watch:
                peer = PeerClient(
                    "benchmark-write-key", host=endpoint, max_queue_size=10 * args.sends
                )
                for _ in range(args.sends):
                    peer.track(USER_ID, EVENT, props)
                peer.shutdown()
            return float(peer_watch.cpu_seconds / args.sends * 1e6)

        # Background-thread CPU per delivered message, without a profiler (its overhead would
        # count): our one sender thread with messages queued faster than it sends, Segment's
        # consumer, and a bare urllib3 loop; interleaved rounds, medians.
        raw()
        default_workers = inspect.signature(gs.Client).parameters["workers"].default
        ours_cpu, ours_default_cpu, peer_cpu, raw_cpu = [], [], [], []
        for _ in range(3):
            cpu_seconds, delivered, _ = deliver_ours(endpoint, args.sends, profile=False)
            ours_cpu.append(cpu_seconds / delivered * 1e6)
            cpu_seconds, delivered, _ = deliver_ours(
                endpoint, args.sends, profile=False, workers=default_workers
            )
            ours_default_cpu.append(cpu_seconds / delivered * 1e6)
            peer_cpu.append(peer_consumer_cpu())
            raw_cpu.append(per_call_cpu_us(raw, args.sends, rounds=1))
        costs.append(
            (
                "sender: ours, sender-thread CPU per delivered message (1 worker)",
                statistics.median(ours_cpu),
            )
        )
        costs.append(
            (
                f"sender: ours, sender-thread CPU per delivered message ({default_workers} "
                "workers, the default)",
                statistics.median(ours_default_cpu),
            )
        )
        costs.append(
            (
                "sender: Segment, consumer-thread CPU per delivered message (batches of 100)",
                statistics.median(peer_cpu),
            )
        )
        costs.append(
            ("sender: bare urllib3 `urlopen()`, same body, one thread", statistics.median(raw_cpu))
        )
        _, delivered, watch = deliver_ours(endpoint, args.sends, profile=True)
        if watch.profiles:
            sections.append(
                f"## cProfile: our sender thread, {delivered:,} messages delivered\n\n"
                + profile_report(pstats.Stats(*watch.profiles), delivered, args.top)
            )
        sections.append(
            f"## cProfile: bare urllib3 `urlopen()` x {args.sends:,}\n\n"
            + profile_calls(raw, args.sends, args.top)
        )
        if args.pyinstrument:
            sections.append(
                "## pyinstrument: bare urllib3 `urlopen()`\n\n```\n"
                + pyinstrument_text(raw, args.sends)
                + "\n```\n"
            )

    print("## Per-message CPU costs (no profiler; callers: median of 5 rounds, senders: of 3)\n")
    print("| path | CPU us per message |\n|---|---|")
    for name, value in costs:
        print(f"| {name} | {value:.1f} |")
    print()
    print("\n".join(sections))


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    # Skip both SDKs' exit-time flushes: their servers are gone.
    os._exit(0)
