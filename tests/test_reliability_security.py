"""Security: the access key stays secret, redirects are not followed, traffic is encrypted.

Across a whole run with failures of every kind at DEBUG logging (the library's logs, urllib3's
and the collector's), the access key appears in no log record, no ``repr``/``str`` of a client,
its settings or an error, and nothing handed to ``on_error``. A redirect to another loopback
host is not followed. ``http://`` is refused for any host but loopback, and TLS certificates are
verified unless the client is given the CA bundle that signed the server's.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Callable

import attrs
import pytest

import gainsight_segment as gs
from gainsight_segment.testing import Faults, LocalCollector

from .conftest import FAST_RETRIES
from .test_reliability import Outcomes, record_figures

# A key of its own, so that no other text in the run can contain it by chance.
SECRET = "5f2b8e1c-9a7d-4c3e-b6f0-1d2e3c4b5a69"
EVENT_PATH = "/clickstream/segmentio/event"


def leaks(text: str, key: str = SECRET) -> bool:
    """Whether a text shows the key, or any 8 characters of it beyond the masked last 4."""
    text, hidden = text.lower(), key[:-4].lower()
    return any(hidden[i : i + 8] in text for i in range(len(hidden) - 7))


# --------------------------------------------------------------------------------------------
# A minimal HTTP(S) server whose answers the test writes: redirects, echoes, TLS.
# --------------------------------------------------------------------------------------------

Answer = tuple[int, dict[str, str], bytes]


@attrs.frozen
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class MiniServer:
    """Answers every request as ``respond`` says, on loopback, over HTTP or HTTPS."""

    def __init__(
        self,
        respond: Callable[[Received], Answer],
        *,
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.received: list[Received] = []
        self.handshake_failures = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                if tls is not None:
                    # The handshake runs here, on the connection's thread, not in accept().
                    try:
                        self.request.do_handshake()
                    except (ssl.SSLError, OSError):
                        outer.handshake_failures += 1
                        raise
                super().setup()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = Received(self.path, dict(self.headers.items()), self.rfile.read(length))
                outer.received.append(request)
                status, headers, body = respond(request)
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # failed handshakes and vanished clients are what some tests are about

        self._server = Server((host, 0), Handler)
        if tls is not None:
            self._server.socket = tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        scheme = "https" if tls is not None else "http"
        self.endpoint = f"{scheme}://{host}:{self._server.server_address[1]}"

    def __enter__(self) -> MiniServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def echo_headers(request: Received) -> Answer:
    # A server (or a proxy in front of it) that repeats the request's headers in its error.
    echoed = "; ".join(f"{name}={value}" for name, value in request.headers.items())
    return 400, {"Content-Type": "text/plain"}, f"bad request: {echoed}".encode()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------------------------------
# Scenario 8: the key never shows.
# --------------------------------------------------------------------------------------------


def near_misses(key: str) -> list[str]:
    """Malformed keys one typo away from a real one: their errors must not show them."""
    return [
        key + "0",
        key[:-1],
        key[:-1] + "g",
        key.replace("-", "_"),
        key.replace("-", ""),
        "\t" + key[:-1] + "\u0660 ",
        key[:8] + key[9:13] + "-" + key[13:],  # a dash moved
    ]


def test_the_access_key_never_shows_in_logs_reprs_errors_or_callbacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # on the root logger: urllib3's debug lines too
    seen: list[str] = []  # every text the app can see
    outcomes = Outcomes()

    def on_error(error: gs.DeliveryError, message: dict[str, Any]) -> None:
        outcomes.on_error(error, message)
        seen.extend([str(error), repr(error), error.reason, error.body, json.dumps(message)])
        if len(outcomes.errors) % 5 == 0:
            raise RuntimeError(f"the app's callback failed on {error!r}")  # logged with exc_info

    options: dict[str, Any] = {"exit_timeout": 0, "on_error": on_error, **FAST_RETRIES}
    faults = Faults(
        failure_rate=0.6,
        failure_statuses=(400, 401, 403, 413, 429, 500, 503),
        retry_after=0.01,
        drop_rate=0.1,
        slow_rate=0.05,
        slow_latency=0.3,
        seed=8,
    )
    clients: list[gs.Client] = []
    with contextlib.ExitStack() as servers:
        faulty = servers.enter_context(LocalCollector(SECRET, faults=faults))
        stalled = servers.enter_context(LocalCollector(SECRET, faults=Faults(stall=True)))
        echo = servers.enter_context(MiniServer(echo_headers))
        # (client, messages): every failure status once at least, retries, timeouts, dropped
        # connections, echoed headers, refused connections, the sync path, a shutdown deadline.
        options["timeout"] = 0.1
        runs = [
            (gs.Client(SECRET, endpoint=faulty.endpoint, max_retries=0, **options), 120),
            (gs.Client(SECRET, endpoint=faulty.endpoint, sync_mode=True, **options), 20),
            (gs.Client(SECRET, endpoint=echo.endpoint, **options), 10),
            (gs.Client(SECRET, endpoint=f"http://127.0.0.1:{closed_port()}", **options), 10),
            (gs.Client(SECRET, endpoint=stalled.endpoint, workers=1, **options), 10),
        ]
        for client, count in runs:
            clients.append(client)
            for n in range(count):
                client.track("u", "Secret Run", {"n": n})
        for client in clients:
            client.shutdown(timeout=1)
            settings = client.settings
            seen += [repr(client), str(client), repr(settings), str(settings)]
            seen += [repr(settings.access_key), str(settings.access_key), repr(client.stats())]
        stalled.release()
    for bad in near_misses(SECRET):
        with pytest.raises(gs.ConfigurationError) as refused:
            gs.Client(bad)
        seen += [str(refused.value), repr(refused.value)]
        assert not leaks(str(refused.value) + repr(refused.value), key=bad.strip())

    formatter = logging.Formatter()
    logged = 0
    for record in caplog.records:
        logged += 1
        seen.append(record.getMessage())
        seen.extend(repr(arg) for arg in record.args or ())
        if record.exc_info:
            seen.append(formatter.formatException(record.exc_info))
        if record.stack_info:
            seen.append(record.stack_info)
    # The run did exercise what could leak: urllib3's debug lines, retries, tracebacks,
    # echoed headers, every kind of failure.
    loggers = {record.name for record in caplog.records}
    assert {"gainsight_segment", "urllib3.connectionpool"} <= loggers
    assert any(record.exc_info for record in caplog.records)
    assert any(SECRET[-4:] in e.body for e, _ in outcomes.errors), "no echo was masked"
    statuses = {e.status for e, _ in outcomes.errors}
    assert {None, 400, 401, 403, 413, 429, 500, 503} <= statuses
    assert leaks(SECRET)
    assert leaks(SECRET[3:15].upper())
    assert not leaks("****" + SECRET[-4:])
    leaked = [text for text in seen if leaks(text)]
    assert not leaked, leaked[:3]
    record_figures(
        "key-secrecy",
        sent=sum(count for _, count in runs),
        clients=len(runs),
        log_records=logged,
        texts_checked=len(seen),
        delivered=sum(c.stats().delivered for c in clients),
        duplicated=0,
        reported=len(outcomes.errors),
        lost=sum(c.stats().queued for c in clients)
        - sum(c.stats().delivered + c.stats().failed + c.stats().dropped for c in clients),
        key_leaks=len(leaked),
    )


@pytest.mark.parametrize(
    ("prefix", "shown"),
    [(170, SECRET), (185, SECRET), (0, SECRET.upper())],
    ids=["cut-after-30", "cut-after-15", "upper-case"],
)
def test_a_key_echoed_in_an_error_body_is_never_partly_shown(prefix: int, shown: str) -> None:
    body = ("x" * prefix + shown).encode()
    errors: list[gs.DeliveryError] = []
    with MiniServer(lambda request: (400, {}, body)) as server:
        client = gs.Client(
            SECRET,
            endpoint=server.endpoint,
            exit_timeout=0,
            on_error=lambda error, message: errors.append(error),
        )
        client.track("u", "Echoed")
        assert client.flush(timeout=10)
        client.shutdown()
    ((error,),) = [errors]
    assert not leaks(error.body + repr(error))


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_host_is_not_followed(status: int) -> None:
    try:
        other = LocalCollector(SECRET, host="127.0.0.2")
    except OSError:  # pragma: no cover - a loopback without 127.0.0.2
        other = LocalCollector(SECRET)
    outcomes = Outcomes()
    with other:
        target = other.endpoint + EVENT_PATH

        def redirect(request: Received) -> Answer:
            return status, {"Location": target}, b""

        with MiniServer(redirect) as server:
            client = gs.Client(
                SECRET, endpoint=server.endpoint, exit_timeout=0, **outcomes.callbacks()
            )
            receipt = client.track("u", "Redirected")
            assert client.flush(timeout=10)
            client.shutdown()
            assert len(server.received) == 1  # not retried either
        assert other.requests == []  # the key never reached the other host
    ((error, _),) = outcomes.errors
    assert (error.status, error.retried, error.message_id) == (status, False, receipt.message_id)
    assert "redirect" in error.reason


# --------------------------------------------------------------------------------------------
# Scenario 9: transport security.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://event.gainsight.com",
        "HTTP://event.gainsight.com",
        "http://10.0.0.1",
        "http://192.168.1.10:8080",
        "http://0.0.0.0:8080",
        "http://[2001:db8::1]",
        "http://[::ffff:127.0.0.1]",  # IPv4-mapped: not reliably loopback everywhere
        "http://127.0.0.1.nip.io",
        "http://localhost.evil.example",
        "http://2130706433",  # 127.0.0.1 as a decimal number
        "http://127.1",
        "http://127.0.0.1@evil.example",
        "http://evil.example#@127.0.0.1",
        "http://evil.example\\@127.0.0.1",
    ],
)
def test_http_to_a_host_that_is_not_loopback_is_refused(endpoint: str) -> None:
    with pytest.raises(gs.ConfigurationError) as refused:
        gs.Client(SECRET, endpoint=endpoint)
    assert not leaks(str(refused.value))


@pytest.mark.parametrize(
    "endpoint",
    ["http://127.0.0.1:1", "http://127.255.255.254:1", "http://localhost:1", "http://[::1]:1"],
)
def test_http_to_loopback_is_allowed(endpoint: str) -> None:
    with gs.Client(SECRET, endpoint=endpoint, exit_timeout=0) as client:
        assert client.settings.endpoint == endpoint


@attrs.frozen
class Certificates:
    ca: Path  # the CA bundle that signed the server's certificate
    other_ca: Path  # an unrelated CA
    server_cert: Path  # for IP 127.0.0.1 only
    server_key: Path


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    (directory / f"{name}.cnf").write_text(
        "[req]\ndistinguished_name = dn\nprompt = no\n"
        f"[dn]\nCN = gainsight-segment test {name}\n"
        "[v3_ca]\nbasicConstraints = critical,CA:TRUE\n"
        "keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n"
    )
    openssl(
        *("req", "-x509", "-config", f"{name}.cnf", "-extensions", "v3_ca"),
        *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
        *("-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2"),
        cwd=directory,
    )
    return directory / f"{name}.pem", directory / f"{name}.key"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A test CA, a server certificate it signed for IP 127.0.0.1, and an unrelated CA."""
    if shutil.which("openssl") is None:  # pragma: no cover - every CI image has it
        pytest.skip("the openssl command is needed to make test certificates")
    directory = tmp_path_factory.mktemp("tls")
    ca, _ = make_ca(directory, "ca")
    other_ca, _ = make_ca(directory, "other-ca")
    (directory / "server.cnf").write_text(
        "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = 127.0.0.1\n"
        "[v3_server]\nbasicConstraints = critical,CA:FALSE\n"
        "keyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\n"
        "subjectAltName = IP:127.0.0.1\nsubjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n"
    )
    openssl(
        *("req", "-new", "-config", "server.cnf"),
        *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
        *("-keyout", "server.key", "-out", "server.csr"),
        cwd=directory,
    )
    openssl(
        *("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key"),
        *("-set_serial", "2", "-days", "2", "-out", "server.pem"),
        *("-extfile", "server.cnf", "-extensions", "v3_server"),
        cwd=directory,
    )
    return Certificates(ca, other_ca, directory / "server.pem", directory / "server.key")


@pytest.fixture
def https_server(certificates: Certificates) -> Iterator[MiniServer]:
    """An HTTPS server on 127.0.0.1 that accepts every message."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates.server_cert, certificates.server_key)
    with MiniServer(lambda request: (200, {}, b'{"status":"ok"}'), tls=context) as server:
        yield server


def send_one(endpoint: str, **options: Any) -> tuple[gs.Stats, list[gs.DeliveryError]]:
    errors: list[gs.DeliveryError] = []
    client = gs.Client(
        SECRET,
        endpoint=endpoint,
        exit_timeout=0,
        timeout=5,
        on_error=lambda error, message: errors.append(error),
        **options,
    )
    client.identify("u", {"accountId": "o283"})
    assert client.flush(timeout=20)
    client.shutdown()
    return client.stats(), errors


def test_tls_is_verified_by_default_and_nothing_is_sent_to_an_unverified_server(
    https_server: MiniServer,
) -> None:
    stats, errors = send_one(https_server.endpoint)
    assert (stats.delivered, stats.failed) == (0, 1)
    ((error,),) = [errors]
    assert error.status is None
    assert "certificate" in error.reason.lower() or "ssl" in error.reason.lower()
    assert https_server.received == []  # the key never left the client
    assert https_server.handshake_failures >= 1
    record_figures(
        "tls-unverified",
        sent=1,
        requests_received=len(https_server.received),
        handshake_failures=https_server.handshake_failures,
        reported=len(errors),
        kind=error.kind,
        lost=0,
    )


def test_tls_with_the_servers_ca_bundle_delivers(
    https_server: MiniServer, certificates: Certificates
) -> None:
    stats, errors = send_one(https_server.endpoint, verify=str(certificates.ca))
    assert (stats.delivered, stats.failed, errors) == (1, 0, [])
    ((request,),) = [https_server.received]
    assert request.path == EVENT_PATH
    assert request.headers["accessKey"] == SECRET
    record_figures(
        "tls",
        sent=1,
        delivered=stats.delivered,
        duplicated=0,
        reported=len(errors),
        lost=0,
        unverified_refused=True,
    )


@pytest.mark.parametrize("case", ["unrelated-ca", "wrong-hostname"])
def test_tls_with_the_wrong_ca_or_hostname_fails(
    https_server: MiniServer, certificates: Certificates, case: str
) -> None:
    endpoint, bundle = https_server.endpoint, certificates.ca
    if case == "unrelated-ca":
        bundle = certificates.other_ca
    else:  # the certificate names IP 127.0.0.1, not "localhost"
        endpoint = endpoint.replace("127.0.0.1", "localhost")
    stats, errors = send_one(endpoint, verify=str(bundle))
    assert (stats.delivered, stats.failed) == (0, 1)
    assert [e.status for e in errors] == [None]
    assert https_server.received == []
    record_figures(
        f"tls-{case}",
        sent=1,
        requests_received=len(https_server.received),
        reported=len(errors),
        kind=errors[0].kind,
        lost=0,
    )
