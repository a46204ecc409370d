"""The measured workloads; each runs in a fresh subprocess started by ``benchmarks/run.py``.

Usage: ``python benchmarks/workloads.py '{"workload": "caller_cost", ...}'``. The process
prints one JSON object (the result) as its last stdout line and leaves with ``os._exit`` so
that neither SDK's exit-time flush (both would wait on a stalled or busy server) is timed
or can hang the run.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import linecache
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ACCESS_KEY = "00000000-0000-4000-8000-000000000000"
WRITE_KEY = "benchmark-write-key"
USER_ID = "user-123"
EVENT = "Account Created"
BASE_PROPERTIES: dict[str, Any] = {
    "accountId": "o283h08fh2390f923uofu23",
    "source": "Invite",
    "title": "CEO",
}
EVENT_PATH = "/clickstream/segmentio/event"
# Threads the benchmark starts itself carry this prefix; the rest belong to an SDK.
BENCH_THREAD = "bench"
SENDER_THREAD = "gainsight-segment-sender"
# Enough for every peer run: Segment's default (10,000) would drop in the memory scenario.
PEER_MAX_QUEUE = 200_000

Track = Callable[[dict[str, Any]], bool]


def properties(size: int) -> dict[str, Any]:
    """The benchmark's properties: the base three, plus line items up to ``size`` bytes of JSON.

    Line items (many small values) rather than one long string, so serialization cost
    grows with the payload as it does for real events.
    """
    props = dict(BASE_PROPERTIES)
    if size <= 0:
        return props
    items: list[dict[str, Any]] = []
    props["items"] = items
    index = 0
    while len(json.dumps(props, separators=(",", ":"))) < size:
        items.append(
            {
                "sku": f"SKU-{index:06d}",
                "name": f"Product number {index}",
                "price": round(19.99 + index, 2),
                "quantity": index % 7 + 1,
            }
        )
        index += 1
    return props


def rss_kib() -> int:
    """The process's resident set size in KiB, from /proc/self/status."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def cpu_seconds_of(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (all its threads)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of proc(5), counted after the ")" that ends the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu_seconds() -> float:
    """User + system CPU seconds used so far by this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Contender:
    """One SDK behind a common face: track, drops, settle."""

    def __init__(self, sdk: str, endpoint: str, **options: Any) -> None:
        self.sdk = sdk
        self.errors = 0
        self.dropped = 0
        self._lock = threading.Lock()
        if sdk == "ours":
            import gainsight_segment as gs

            def on_error(error: Exception, message: object) -> None:
                with self._lock:
                    self.errors += 1

            options.setdefault("exit_timeout", 0)
            self.ours = gs.Client(ACCESS_KEY, endpoint=endpoint, on_error=on_error, **options)
            self._queued = gs.Outcome.QUEUED
            self.track = self._track_ours
        elif sdk == "peer":
            from segment.analytics import Client as PeerClient  # type: ignore[import-untyped]

            def on_peer_error(error: Exception, batch: list[Any]) -> None:
                with self._lock:
                    self.errors += len(batch)

            options.setdefault("max_queue_size", PEER_MAX_QUEUE)
            self.peer = PeerClient(WRITE_KEY, host=endpoint, on_error=on_peer_error, **options)
            self.track = self._track_peer
        else:
            raise ValueError(f"unknown sdk {sdk!r}")

    def _track_ours(self, props: dict[str, Any]) -> bool:
        return self.ours.track(USER_ID, EVENT, props).outcome is self._queued

    def _track_peer(self, props: dict[str, Any]) -> bool:
        ok, _ = self.peer.track(USER_ID, EVENT, props)
        return bool(ok)

    def flush(self) -> None:
        """Wait until everything queued so far is settled."""
        if self.sdk == "ours":
            self.ours.flush()
        else:
            self.peer.flush()

    def pending(self) -> int:
        """Messages queued and not yet sent."""
        if self.sdk == "ours":
            return self.ours.stats().pending
        return int(self.peer.queue.qsize())

    def delivered(self) -> int | None:
        """Messages delivered so far, when the SDK counts them."""
        return self.ours.stats().delivered if self.sdk == "ours" else None

    def in_flight(self) -> int:
        """Messages being sent right now (ours only; 0 for Segment's)."""
        return self.ours.stats().in_flight if self.sdk == "ours" else 0


class Sampler:
    """Calls ``probe`` every ``interval`` seconds in a thread of its own, from time 0.

    Keeps one row ``[seconds since start, *probe()]`` per tick (on a fixed grid, so that
    a late tick does not shift the later ones). Use it as a context manager around the
    measured span; an ``interval`` of 0 samples nothing.
    """

    def __init__(self, probe: Callable[[], list[float]], interval: float) -> None:
        self.rows: list[list[float]] = []
        self._probe = probe
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{BENCH_THREAD}-sampler")
        self._started = 0.0

    def __enter__(self) -> Sampler:
        self._started = time.perf_counter()
        if self._interval > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while True:
            elapsed = time.perf_counter() - self._started
            self.rows.append([round(elapsed, 3), *self._probe()])
            # The next point of the grid; a late tick skips those it missed.
            ahead = (int(elapsed / self._interval) + 1) * self._interval - elapsed
            if self._stop.wait(ahead):
                return


def sender_threads() -> int:
    """Our sender threads alive (they are named ``gainsight-segment-sender-N``)."""
    return sum(1 for t in threading.enumerate() if t.name.startswith(SENDER_THREAD))


def sdk_threads() -> int:
    """Threads alive that belong to an SDK (all but the main thread and the benchmark's)."""
    main = threading.main_thread()
    return sum(
        1 for t in threading.enumerate() if t is not main and not t.name.startswith(BENCH_THREAD)
    )


def caller_cost(
    sdk: str,
    endpoint: str,
    calls: int,
    threads: int,
    payload: int,
    warmup: int,
    workers: int | None = None,
    max_queue_size: int | None = None,
    sample: float = 0.0,
    outbox: str = "",
) -> dict[str, Any]:
    """Time ``calls`` track() calls split over ``threads`` producer threads.

    Reports, per call: the wall time of the whole burst (the caller's cost as an app sees
    it, background-thread contention for the GIL included), the producers' own CPU time,
    and the whole process's CPU time during the burst (the SDK's background threads too).
    ``workers`` overrides our client's default (adaptive) senders with a fixed pool (ours
    only); ``max_queue_size`` raises either SDK's queue bound; ``sample`` > 0 counts the
    SDK's threads (and our requests in flight) every ``sample`` seconds during the burst.
    ``outbox`` (ours only) writes every call to a new outbox file first: ``"senders"``
    delivers from it in this process, ``"fsync"`` too with ``outbox_fsync=True``, and
    ``"write-only"`` only writes (``workers=0``) while a relay process drains it.
    """
    with contextlib.ExitStack() as stack:
        options: dict[str, Any] = {}
        if workers is not None:
            options["workers"] = workers
        if max_queue_size is not None:
            options["max_queue_size"] = max_queue_size
        if outbox:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-outbox-"))
            options["outbox"] = os.path.join(folder, "events.db")
            options["outbox_fsync"] = outbox == "fsync"
            if outbox == "write-only":
                options["workers"] = 0
        contender = Contender(sdk, endpoint, **options)
        if outbox == "write-only":
            stack.enter_context(_relay(options["outbox"], endpoint))
        return _burst(contender, properties(payload), calls, threads, warmup, sample)


@contextlib.contextmanager
def _relay(outbox: str, endpoint: str) -> Iterator[None]:
    """``gainsight-segment relay`` draining ``outbox`` in a process of its own."""
    relay = subprocess.Popen(
        [sys.executable, "-m", "gainsight_segment", "relay", outbox, "--endpoint", endpoint],
        env={**os.environ, "GAINSIGHT_ACCESS_KEY": ACCESS_KEY},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        relay.terminate()
        try:
            relay.wait(timeout=30)
        except subprocess.TimeoutExpired:
            relay.kill()
            relay.wait(timeout=30)


def _burst(
    contender: Contender,
    props: dict[str, Any],
    calls: int,
    threads: int,
    warmup: int,
    sample: float,
) -> dict[str, Any]:
    for _ in range(warmup):
        contender.track(props)
    contender.flush()
    gc.collect()
    per_thread = calls // threads
    barrier = threading.Barrier(threads + 1)
    drops = [0] * threads
    cpu = [0.0] * threads

    def produce(index: int) -> None:
        track = contender.track
        barrier.wait()
        started = time.thread_time()
        dropped = 0
        for _ in range(per_thread):
            if not track(props):
                dropped += 1
        cpu[index] = time.thread_time() - started
        drops[index] = dropped

    producers = [
        threading.Thread(target=produce, args=(i,), name=f"{BENCH_THREAD}-producer-{i}")
        for i in range(threads)
    ]
    for producer in producers:
        producer.start()
    sampler = Sampler(lambda: [sdk_threads(), contender.in_flight()], sample)
    with sampler:
        barrier.wait()
        started, process_cpu = time.perf_counter(), self_cpu_seconds()
        for producer in producers:
            producer.join()
        wall = time.perf_counter() - started
        process_cpu = self_cpu_seconds() - process_cpu
    total = per_thread * threads
    return {
        "us_per_call": wall / total * 1e6,
        "cpu_us_per_call": sum(cpu) / total * 1e6,
        "process_cpu_us_per_call": process_cpu / total * 1e6,
        "calls": total,
        "dropped": sum(drops),
        "pending_at_end": contender.pending(),
        "sdk_threads_at_end": sdk_threads(),
        "samples": sampler.rows,
        "errors": contender.errors,
    }


def _control(endpoint: str, name: str) -> Any:
    """Call one of the fast server's control endpoints (``reset``, ``stats``)."""
    with urllib.request.urlopen(f"{endpoint}/_bench/{name}", timeout=30) as answer:
        return json.loads(answer.read())


def sdk_throughput(
    sdk: str,
    endpoint: str,
    messages: int,
    server_pid: int,
    options: dict[str, Any] | None = None,
    warmup: int = 10,
    sample: float = 0.0,
    server_stats: bool = False,
) -> dict[str, Any]:
    """Events per second from the first track() to the end of flush().

    ``options`` go to the client; ``warmup`` messages are sent and flushed first (not
    timed). Also reports the process's CPU and the main (calling) thread's over the timed
    span, so that the SDK's background threads' share is their difference. ``sample`` > 0
    records our requests in flight and sender threads every ``sample`` seconds;
    ``server_stats`` resets the fast server's statistics at the start and returns them.
    """
    props = properties(0)
    contender = Contender(sdk, endpoint, **(options or {}))
    for _ in range(warmup):
        contender.track(props)
    contender.flush()
    before = contender.delivered()
    gc.collect()
    if server_stats:
        _control(endpoint, "reset")
    server_cpu, own_cpu, caller_cpu = cpu_seconds_of(server_pid), self_cpu_seconds(), 0.0
    dropped = 0
    with Sampler(lambda: [contender.in_flight(), sender_threads()], sample) as sampler:
        started, caller_cpu = time.perf_counter(), time.thread_time()
        for _ in range(messages):
            if not contender.track(props):
                dropped += 1
        contender.flush()
        wall = time.perf_counter() - started
        caller_cpu = time.thread_time() - caller_cpu
    process_cpu = self_cpu_seconds() - own_cpu
    result: dict[str, Any] = {
        "events_per_s": messages / wall,
        "wall_s": wall,
        "server_cpu": (cpu_seconds_of(server_pid) - server_cpu) / wall,
        "client_cpu": process_cpu / wall,
        "process_cpu_s": process_cpu,
        "caller_cpu_s": caller_cpu,
        "dropped": dropped,
        "errors": contender.errors,
        "samples": sampler.rows,
    }
    if server_stats:
        result["server"] = _control(endpoint, "stats")
    if sdk == "ours":
        import gainsight_segment

        stats = contender.ours.stats()
        result.update(
            library=os.path.dirname(gainsight_segment.__file__),
            failed=stats.failed,
            retried=stats.retried,
            dropped_total=stats.dropped,
        )
    after = contender.delivered()
    if before is not None and after is not None:
        result["delivered"] = after - before
    return result


def raw_throughput(endpoint: str, messages: int, workers: int, server_pid: int) -> dict[str, Any]:
    """A bare urllib3 keep-alive loop: ``workers`` threads sharing one pool, same body."""
    import urllib3

    from gainsight_segment import MessageBuilder, __version__

    body = (
        MessageBuilder()
        .track(USER_ID, EVENT, properties(0))
        .body_sent_at("2024-01-01T00:00:00.000Z")
    )
    headers = {
        "accessKey": ACCESS_KEY,
        "Content-Type": "application/json",
        "User-Agent": f"gainsight-segment-python/{__version__}",
        "Accept": "*/*",
        "Connection": "keep-alive",
    }
    url = urlsplit(endpoint)
    pool = urllib3.HTTPConnectionPool(
        url.hostname or "127.0.0.1", url.port, maxsize=workers, block=True, retries=False
    )
    failures = [0]

    def post() -> None:
        response = pool.urlopen("POST", EVENT_PATH, body=body, headers=headers, redirect=False)
        if response.status != 200:
            failures[0] += 1

    for _ in range(workers * 2):
        post()
    counter = itertools.count()

    def loop() -> None:
        while next(counter) < messages:
            post()

    threads = [threading.Thread(target=loop) for _ in range(workers)]
    server_cpu, own_cpu = cpu_seconds_of(server_pid), self_cpu_seconds()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {
        "events_per_s": messages / wall,
        "server_cpu": (cpu_seconds_of(server_pid) - server_cpu) / wall,
        "client_cpu": (self_cpu_seconds() - own_cpu) / wall,
        "errors": failures[0],
    }


def _read_response(sock: socket.socket, buffer: bytearray) -> None:
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            head = bytes(buffer[:end]).lower()
            if not head.startswith(b"http/1.1 200"):
                raise RuntimeError(f"unexpected answer: {head[:40]!r}")
            start = head.find(b"content-length:")
            length = 0
            if start >= 0:
                length = int(head[start + 15 :].split(b"\r\n", 1)[0])
            if len(buffer) >= end + 4 + length:
                del buffer[: end + 4 + length]
                return
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed")
        buffer += chunk


def load(endpoint: str, connections: int, start_at: float, duration: float) -> dict[str, Any]:
    """Raw-socket load: ``connections`` keep-alive connections, one request in flight each.

    Starts at wall-clock ``start_at`` (so several load processes start together) and counts
    the requests answered in ``duration`` seconds.
    """
    from gainsight_segment import MessageBuilder

    url = urlsplit(endpoint)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    body = (
        MessageBuilder()
        .track(USER_ID, EVENT, properties(0))
        .body_sent_at("2024-01-01T00:00:00.000Z")
    )
    request = (
        f"POST {EVENT_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\naccessKey: {ACCESS_KEY}\r\n"
        f"Content-Type: application/json\r\nUser-Agent: benchmark-load\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("ascii") + body
    counts = [0] * connections
    stop_at = start_at + duration

    def drive(index: int) -> None:
        sock = socket.create_connection((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = bytearray()
        time.sleep(max(0.0, start_at - time.time()))
        done = 0
        while time.time() < stop_at:
            sock.sendall(request)
            _read_response(sock, buffer)
            done += 1
        counts[index] = done
        sock.close()

    threads = [threading.Thread(target=drive, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"requests": sum(counts), "duration": duration}


def memory(sdk: str, endpoint: str, messages: int) -> dict[str, Any]:
    """RSS growth with ``messages`` queued behind a server that never answers."""
    props = properties(0)
    options: dict[str, Any] = {"max_queue_size": max(messages, 100_000)}
    contender = Contender(sdk, endpoint, **options)
    # One message first, so that both SDKs' sender threads exist in the baseline.
    contender.track(props)
    time.sleep(0.2)
    gc.collect()
    baseline = rss_kib()
    dropped = 0
    for _ in range(messages - 1):
        if not contender.track(props):
            dropped += 1
    gc.collect()
    time.sleep(0.2)
    grown = rss_kib()
    return {
        "rss_growth_kib": grown - baseline,
        "baseline_kib": baseline,
        "bytes_per_message": (grown - baseline) * 1024 / messages,
        "pending": contender.pending(),
        "dropped": dropped,
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def idle(endpoint: str, seconds: float, every: float = 1.0) -> dict[str, Any]:
    """Our client with default settings sends one message, then idles ``seconds``.

    Reports the process's CPU seconds over the idle span and the sender threads alive
    along it (counted from the main thread every ``every`` seconds, so that no sampler
    thread of ours wakes the process more than that).
    """
    contender = Contender("ours", endpoint)
    contender.track(properties(0))
    contender.flush()
    timeline = [[0.0, float(sender_threads())]]
    started, cpu = time.perf_counter(), self_cpu_seconds()
    tick = 0
    while True:
        tick += 1
        due = min(tick * every, seconds)
        time.sleep(max(0.0, started + due - time.perf_counter()))
        timeline.append([round(time.perf_counter() - started, 3), float(sender_threads())])
        if due >= seconds:
            break
    cpu = self_cpu_seconds() - cpu
    return {
        "cpu_s": cpu,
        "threads_at_end": sender_threads(),
        "sdk_threads_at_end": sdk_threads(),
        "timeline": timeline,
        "delivered": contender.delivered(),
    }


def _short_path(filename: str) -> str:
    """A source file's path from its package root (site-packages, the repo, the stdlib)."""
    parts = Path(filename).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            return "/".join(parts[parts.index(marker) + 1 :])
    if "gainsight_segment" in parts:
        return "/".join(parts[parts.index("gainsight_segment") :])
    return parts[-1] if parts else filename


def memory_breakdown(sdk: str, endpoint: str, messages: int, top: int = 8) -> dict[str, Any]:
    """What each queued message holds: ``tracemalloc`` by allocation site, per message.

    As :func:`memory`, behind a server that never answers, but counting the Python
    allocations that are still alive (not RSS) and grouping them by the source line that
    made them. Also returns the size of our serialized body, for comparison.
    """
    props = properties(0)
    contender = Contender(sdk, endpoint, max_queue_size=max(messages, 100_000))
    contender.track(props)
    time.sleep(0.2)
    gc.collect()
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    for _ in range(messages - 1):
        contender.track(props)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    count = messages - 1
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    stats = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "lineno")
    total = sum(stat.size_diff for stat in stats)
    sites = []
    for stat in sorted(stats, key=lambda s: -s.size_diff)[:top]:
        frame = stat.traceback[0]
        sites.append(
            {
                "site": f"{_short_path(frame.filename)}:{frame.lineno}",
                "code": linecache.getline(frame.filename, frame.lineno).strip()[:90],
                "bytes": stat.size_diff / count,
                "blocks": stat.count_diff / count,
            }
        )
    result: dict[str, Any] = {
        "traced_bytes_per_message": total / count,
        "sites": sites,
        "pending": contender.pending(),
    }
    if sdk == "ours":
        from gainsight_segment import MessageBuilder

        message = MessageBuilder().track(USER_ID, EVENT, props)
        result["body_len"] = len(message.body)
        result["body_object"] = sys.getsizeof(message.body)
        result["message_id_object"] = sys.getsizeof(message.message_id)
        result["message_tuple"] = sys.getsizeof(message)
    return result


def main() -> None:
    """Run the workload described by the JSON argument and print its result."""
    spec: dict[str, Any] = json.loads(sys.argv[1])
    workload = spec.pop("workload")
    functions: dict[str, Callable[..., dict[str, Any]]] = {
        "caller_cost": caller_cost,
        "sdk_throughput": sdk_throughput,
        "raw_throughput": raw_throughput,
        "load": load,
        "memory": memory,
        "memory_breakdown": memory_breakdown,
        "idle": idle,
    }
    result = functions[workload](**spec)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
