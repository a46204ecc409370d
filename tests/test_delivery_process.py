"""The process around a client: SIGTERM flushes when asked to, and hands the signal on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest

import gainsight_segment as gs

from .conftest import ACCESS_KEY
from .servers import ScriptedServer, answer

MESSAGES = 100

# The app: queues MESSAGES tracks to a slow endpoint, says so, then idles until stopped.
APP = textwrap.dedent(
    """
    import signal, sys, time
    import gainsight_segment as gs

    setup, endpoint = sys.argv[1], sys.argv[2]
    if setup == "app-handler":
        def stop(signum, frame):
            print("app handler", flush=True)
            sys.exit(3)
        signal.signal(signal.SIGTERM, stop)
    if setup == "ignored":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    client = gs.Client(sys.argv[3], endpoint=endpoint, workers=2, exit_timeout=10)
    if setup != "no-flush":
        client.flush_on_sigterm()
    for n in range(int(sys.argv[4])):
        client.track("u", "Clicked", {"n": n})
    print("ready", flush=True)
    time.sleep(60)
    """
)


@pytest.fixture
def endpoint() -> Iterator[ScriptedServer]:
    # 10 ms an answer, two at a time: the queue takes about half a second to deliver.
    with ScriptedServer(lambda request: [0.01, answer(200)]) as server:
        yield server


def stop_app(
    setup: str, server: ScriptedServer, prefix: tuple[str, ...] = ()
) -> tuple[int | None, str]:
    """Start the app, SIGTERM it once it has queued its messages; its status and output.

    The status is ``None`` when the app was still running once everything had arrived.
    """
    app = subprocess.Popen(
        [*prefix, sys.executable, "-c", APP, setup, server.endpoint, ACCESS_KEY, str(MESSAGES)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert app.stdout is not None
    try:
        assert app.stdout.readline() == "ready\n"
        if prefix:  # the app is the child of the command that started it
            with open(f"/proc/{app.pid}/task/{app.pid}/children", encoding="ascii") as found:
                os.kill(int(found.read().split()[0]), signal.SIGTERM)
        else:
            app.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        while app.poll() is None and delivered(server) < MESSAGES:
            assert time.monotonic() < deadline, "neither delivered nor ended"
            time.sleep(0.02)
        status = app.wait(timeout=15) if app.poll() is not None or setup != "ignored" else None
        return status, app.stdout.read() if status is not None else ""
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
        app.stdout.close()


def delivered(server: ScriptedServer) -> int:
    return len(server.requests)


def test_sigterm_without_flush_on_sigterm_loses_what_was_queued(
    endpoint: ScriptedServer,
) -> None:
    status, _ = stop_app("no-flush", endpoint)
    assert status == -signal.SIGTERM
    assert delivered(endpoint) < MESSAGES


def test_sigterm_flushes_then_ends_the_process_as_by_default(endpoint: ScriptedServer) -> None:
    status, _ = stop_app("default", endpoint)
    assert (status, delivered(endpoint)) == (-signal.SIGTERM, MESSAGES)


def test_as_process_1_sigterm_flushes_then_exits_with_the_status_of_a_sigterm(
    endpoint: ScriptedServer,
) -> None:
    # A container's first process: the kernel ignores a signal it does not handle itself.
    # unshare makes the app process 1 of a new process namespace (root only, as in CI).
    status, _ = stop_app("default", endpoint, ("unshare", "--fork", "--pid", "--mount-proc"))
    assert (status, delivered(endpoint)) == (128 + signal.SIGTERM, MESSAGES)


def test_sigterm_flushes_then_calls_the_apps_own_handler(endpoint: ScriptedServer) -> None:
    status, output = stop_app("app-handler", endpoint)
    assert (status, output, delivered(endpoint)) == (3, "app handler\n", MESSAGES)


def test_an_ignored_sigterm_still_flushes_and_stays_ignored(endpoint: ScriptedServer) -> None:
    status, _ = stop_app("ignored", endpoint)
    assert (status, delivered(endpoint)) == (None, MESSAGES)


def test_flush_on_sigterm_is_refused_outside_the_main_thread() -> None:
    client = gs.Client(ACCESS_KEY, send=False)
    errors: list[Exception] = []

    def install() -> None:
        try:
            client.flush_on_sigterm()
        except gs.ConfigurationError as error:
            errors.append(error)

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=install)
    thread.start()
    thread.join()
    assert [str(error) for error in errors] == [
        "flush_on_sigterm(): signal handlers can only be installed from the main thread"
    ]
    assert signal.getsignal(signal.SIGTERM) is before
