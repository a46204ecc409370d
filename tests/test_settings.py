"""Tests of ``gainsight_segment._settings``: access key, endpoint and the Settings value object."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
import pytest
import requests.utils

from gainsight_segment import ConfigurationError, GainsightError, Settings
from gainsight_segment._settings import (
    ACCESS_KEY_ENV,
    DEFAULT_ENDPOINT,
    AccessKey,
    mask,
    normalize_endpoint,
)
from gainsight_segment._whitelist import TrackWhitelist
from gainsight_segment._wire import EVENT_PATH

KEY = "35a84f9e-7084-47a1-b8a5-593444e9e862"
OTHER_KEY = "0f1e2d3c-4b5a-6978-8a9b-acbdcedf0f1e"


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own environment must not decide what "missing" means.
    monkeypatch.delenv(ACCESS_KEY_ENV, raising=False)


def config_error(func: object, *args: object, **kwargs: object) -> ConfigurationError:
    assert callable(func)
    with pytest.raises(ConfigurationError) as info:
        func(*args, **kwargs)
    return info.value


# --- access key ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(KEY, KEY, id="lower-case"),
        pytest.param(KEY.upper(), KEY.upper(), id="upper-case"),
        pytest.param(
            "35A84f9E-7084-47a1-B8A5-593444e9E862",
            "35A84f9E-7084-47a1-B8A5-593444e9E862",
            id="mixed-case",
        ),
        pytest.param(f"  {KEY}\n", KEY, id="padded-with-whitespace"),
        pytest.param(f"\t{KEY} ", KEY, id="padded-with-tab"),
    ],
)
def test_access_key_parse_accepts_valid_keys(given: str, expected: str) -> None:
    assert AccessKey.parse(given).secret == expected


@pytest.mark.parametrize(
    ("given", "fragments"),
    [
        pytest.param(KEY[:-1], ["36 characters", "got 35"], id="35-chars"),
        pytest.param(KEY + "a", ["36 characters", "got 37"], id="37-chars"),
        pytest.param(KEY.replace("-", ""), ["36 characters", "got 32"], id="no-dashes"),
        pytest.param("35a84f9e7-084-47a1-b8a5-593444e9e862", ["UUID layout"], id="dash-misplaced"),
        pytest.param("35a84f9e-7084-47a1-b8a5_593444e9e862", ["UUID layout"], id="underscore"),
        pytest.param("35a84f9g-7084-47a1-b8a5-593444e9e862", ["UUID layout"], id="non-hex"),
        pytest.param("{5a84f9e-7084-47a1-b8a5-593444e9e86}", ["UUID layout"], id="braces"),
        pytest.param("", ["empty"], id="empty"),
        pytest.param("   ", ["empty"], id="blank"),
    ],
)
def test_access_key_parse_rejects_bad_keys_saying_why(given: str, fragments: list[str]) -> None:
    error = config_error(AccessKey.parse, given)
    text = str(error)
    assert text.startswith("access_key: ")
    for fragment in fragments:
        assert fragment in text


@pytest.mark.parametrize(
    "given",
    [
        pytest.param(KEY[:-1], id="35-chars"),
        pytest.param(KEY + "a", id="37-chars"),
        pytest.param(KEY.replace("e", "g"), id="non-hex"),
        pytest.param(KEY.replace("-", "_"), id="wrong-layout"),
    ],
)
def test_access_key_error_never_contains_the_key(given: str) -> None:
    error = config_error(AccessKey.parse, given)
    assert given not in str(error)
    assert given not in repr(error)
    assert given.strip()[-8:] not in str(error)


@pytest.mark.parametrize(
    ("given", "type_name"),
    [
        pytest.param(1234, "int", id="int"),
        pytest.param(KEY.encode(), "bytes", id="bytes"),
        pytest.param(["a"], "list", id="list"),
    ],
)
def test_access_key_parse_rejects_non_strings(given: object, type_name: str) -> None:
    error = config_error(AccessKey.parse, given)
    assert str(error) == f"access_key: must be a string, got {type_name}"


def test_access_key_parse_reads_environment_when_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ACCESS_KEY_ENV, f" {KEY} ")
    assert AccessKey.parse(None).secret == KEY


def test_access_key_parse_prefers_given_key_over_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ACCESS_KEY_ENV, OTHER_KEY)
    assert AccessKey.parse(KEY).secret == KEY


def test_access_key_missing_without_environment_says_how_to_fix() -> None:
    error = config_error(AccessKey.parse, None)
    assert "missing" in str(error)
    assert ACCESS_KEY_ENV in str(error)


@pytest.mark.parametrize(
    ("env_value", "fragment"),
    [
        pytest.param(KEY[:-1], "got 35 characters", id="short"),
        pytest.param(KEY.replace("-", "+"), "UUID layout", id="wrong-layout"),
        pytest.param("", "empty", id="empty"),
    ],
)
def test_access_key_invalid_environment_error_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, env_value: str, fragment: str
) -> None:
    monkeypatch.setenv(ACCESS_KEY_ENV, env_value)
    error = config_error(AccessKey.parse, None)
    assert str(error).startswith(f"{ACCESS_KEY_ENV}: ")
    assert fragment in str(error)
    if env_value:
        assert env_value not in str(error)


def test_access_key_parse_returns_an_access_key_unchanged() -> None:
    key = AccessKey.parse(KEY)
    assert AccessKey.parse(key) is key


@pytest.mark.parametrize("show", [pytest.param(repr, id="repr"), pytest.param(str, id="str")])
def test_access_key_shows_only_masked_form(show: object) -> None:
    assert callable(show)
    text = show(AccessKey.parse(KEY))
    assert text == "AccessKey('****e862')"
    assert KEY not in text


def test_mask_keeps_only_last_four_characters() -> None:
    assert mask(KEY) == "****e862"


# --- endpoint -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(DEFAULT_ENDPOINT, DEFAULT_ENDPOINT, id="default"),
        pytest.param("https://event.gainsight.com/", DEFAULT_ENDPOINT, id="trailing-slash"),
        pytest.param("https://event.gainsight.com///", DEFAULT_ENDPOINT, id="trailing-slashes"),
        pytest.param(" https://event.gainsight.com ", DEFAULT_ENDPOINT, id="padded"),
        pytest.param("https://proxy.example/base/", "https://proxy.example/base", id="with-path"),
        pytest.param("https://example.com:8443", "https://example.com:8443", id="https-port"),
        pytest.param("http://localhost:8080/", "http://localhost:8080", id="http-localhost"),
        pytest.param("http://LOCALHOST", "http://LOCALHOST", id="http-localhost-upper"),
        pytest.param("http://127.0.0.1:9000", "http://127.0.0.1:9000", id="http-127.0.0.1"),
        pytest.param("http://127.5.6.7", "http://127.5.6.7", id="http-127/8"),
        pytest.param("http://[::1]:8080/", "http://[::1]:8080", id="http-ipv6-loopback"),
    ],
)
def test_normalize_endpoint_accepts(given: str, expected: str) -> None:
    assert normalize_endpoint(given) == expected


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        pytest.param("http://event.gainsight.com", "only allowed for loopback", id="http-public"),
        pytest.param("http://10.0.0.1", "only allowed for loopback", id="http-private-ip"),
        pytest.param("http://128.0.0.1", "only allowed for loopback", id="http-128"),
        pytest.param("http://localhost.evil.com", "only allowed for loopback", id="http-lookalike"),
        pytest.param("ftp://event.gainsight.com", "https://", id="ftp"),
        pytest.param(
            "event.gainsight.com",
            "has no scheme; write it as 'https://event.gainsight.com'",
            id="no-scheme",
        ),
        pytest.param(
            "127.0.0.1:1234",
            "has no scheme; write it as 'http://127.0.0.1:1234'",
            id="loopback-without-scheme",
        ),
        pytest.param(
            "localhost:8080", "write it as 'http://localhost:8080'", id="localhost-without-scheme"
        ),
        pytest.param("https://exa mple.com", "white space or control", id="space-in-host"),
        pytest.param("https://exa\nmple.com", "white space or control", id="newline-in-host"),
        pytest.param("https://exa\x00mple.com", "white space or control", id="nul-in-host"),
        pytest.param("https://exa\tmple.com", "white space or control", id="tab-in-host"),
        pytest.param("https://exa$mple.com", "not a valid host", id="dollar-in-host"),
        pytest.param("https://-example.com", "not a valid host", id="leading-hyphen"),
        pytest.param("https://a..b.com", "not a valid host", id="empty-label"),
        pytest.param("https://", "no host", id="no-host"),
        pytest.param("https:///path", "no host", id="no-host-with-path"),
        pytest.param("https://user:pw@example.com", "credentials", id="credentials"),
        pytest.param("https://user@example.com", "credentials", id="username"),
        pytest.param("https://example.com/?a=1", "query or fragment", id="query"),
        pytest.param("https://example.com#frag", "query or fragment", id="fragment"),
        pytest.param("https://example.com?", "query or fragment", id="empty-query"),
        pytest.param("https://example.com/#", "query or fragment", id="empty-fragment"),
        pytest.param("https://example.com:99999", "not a valid URL", id="port-out-of-range"),
        pytest.param("https://example.com:http", "not a valid URL", id="port-not-a-number"),
        pytest.param("https://[::1", "not a valid URL", id="broken-ipv6"),
    ],
)
def test_normalize_endpoint_refuses(given: str, fragment: str) -> None:
    error = config_error(normalize_endpoint, given)
    assert str(error).startswith("endpoint: ")
    assert fragment in str(error)


@pytest.mark.parametrize(
    "given",
    [
        pytest.param(None, id="none"),
        pytest.param(b"https://event.gainsight.com", id="bytes"),
        pytest.param(443, id="int"),
    ],
)
def test_normalize_endpoint_refuses_non_strings(given: object) -> None:
    error = config_error(normalize_endpoint, given)
    assert str(error) == f"endpoint: must be a string, got {type(given).__name__}"


# --- Settings -----------------------------------------------------------------------------


def test_settings_defaults() -> None:
    settings = Settings(access_key=KEY)
    assert settings.access_key == AccessKey(KEY)
    assert settings.track_whitelist == TrackWhitelist()
    assert settings.endpoint == DEFAULT_ENDPOINT
    assert settings.url == DEFAULT_ENDPOINT + EVENT_PATH
    assert settings.timeout == 10.0
    assert settings.max_retries == 3
    assert settings.verify is True
    assert dict(settings.proxies) == {}


def test_settings_url_appends_event_path_to_normalized_endpoint() -> None:
    settings = Settings(access_key=KEY, endpoint="http://127.0.0.1:8080/")
    assert settings.url == "http://127.0.0.1:8080/clickstream/segmentio/event"


def test_settings_strips_access_key() -> None:
    assert Settings(access_key=f" {KEY} ").access_key.secret == KEY


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: Settings(), id="not-passed"),
        pytest.param(lambda: Settings(access_key=None), id="none"),
    ],
)
def test_settings_reads_access_key_from_environment(
    monkeypatch: pytest.MonkeyPatch, make: object
) -> None:
    assert callable(make)
    monkeypatch.setenv(ACCESS_KEY_ENV, KEY)
    assert make().access_key.secret == KEY


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: Settings(), id="not-passed"),
        pytest.param(lambda: Settings(access_key=None), id="none"),
    ],
)
def test_settings_without_any_access_key_is_a_configuration_error(make: object) -> None:
    error = config_error(make)
    assert ACCESS_KEY_ENV in str(error)


def test_settings_with_bad_access_key_does_not_echo_it() -> None:
    error = config_error(Settings, access_key=KEY[:-1])
    assert "got 35 characters" in str(error)
    assert KEY[:-1] not in str(error)


@pytest.mark.parametrize("show", [pytest.param(repr, id="repr"), pytest.param(str, id="str")])
def test_settings_show_only_masked_access_key(show: object) -> None:
    assert callable(show)
    text = show(Settings(access_key=KEY))
    assert "****e862" in text
    assert KEY not in text
    assert KEY[:8] not in text


def test_settings_converts_track_whitelist() -> None:
    settings = Settings(access_key=KEY, track_whitelist=["Order Completed"])
    assert settings.track_whitelist.names == frozenset({"order completed"})


def test_settings_refuses_bad_track_whitelist() -> None:
    error = config_error(Settings, access_key=KEY, track_whitelist="Order Completed")
    assert str(error).startswith("track_whitelist: ")


def test_settings_refuses_http_to_public_host() -> None:
    error = config_error(Settings, access_key=KEY, endpoint="http://event.gainsight.com")
    assert "loopback" in str(error)


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        pytest.param("timeout", 0, "greater than zero", id="timeout-zero"),
        pytest.param("timeout", -1.5, "greater than zero", id="timeout-negative"),
        pytest.param("timeout", float("nan"), "finite", id="timeout-nan"),
        pytest.param("timeout", float("inf"), "finite", id="timeout-inf"),
        pytest.param("timeout", True, "number, got bool", id="timeout-bool"),
        pytest.param("timeout", "10", "number, got str", id="timeout-string"),
        pytest.param("max_retries", -1, "at least 0", id="max-retries-negative"),
        pytest.param("max_retries", 2.0, "integer, got float", id="max-retries-float"),
        pytest.param("max_retries", False, "integer, got bool", id="max-retries-bool"),
        pytest.param("backoff_factor", -0.1, "zero or more", id="backoff-factor-negative"),
        pytest.param("backoff_max", float("nan"), "finite", id="backoff-max-nan"),
        pytest.param("workers", 0, "needs an outbox", id="workers-zero"),
        pytest.param(
            "workers", Decimal("sNaN"), "integer, got Decimal", id="workers-signaling-nan"
        ),
        pytest.param("max_queue_size", 0, "at least 1", id="queue-size-zero"),
        pytest.param("block_timeout", -1, "zero or more", id="block-timeout-negative"),
        pytest.param("exit_timeout", -1, "zero or more", id="exit-timeout-negative"),
        pytest.param("on_queue_full", "wait", "'drop' or 'block'", id="on-queue-full-unknown"),
        pytest.param("on_queue_full", "DROP", "'drop' or 'block'", id="on-queue-full-case"),
        pytest.param("verify", 1, "CA bundle path", id="verify-int"),
        pytest.param("verify", None, "CA bundle path", id="verify-none"),
        pytest.param("verify", "/nonexistent/ca.pem", "no CA bundle", id="verify-missing-file"),
        pytest.param("proxies", ["http://proxy"], "mapping", id="proxies-list"),
        pytest.param("proxies", "http://proxy", "mapping", id="proxies-string"),
        pytest.param("proxies", {"https": 8080}, "mapping", id="proxies-non-string-url"),
    ],
)
def test_settings_refuses_invalid_option(field: str, value: Any, fragment: str) -> None:
    error = config_error(Settings, access_key=KEY, **{field: value})
    assert str(error).startswith(f"{field}: ")
    assert fragment in str(error)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("timeout", 0.001, id="timeout-small"),
        pytest.param("max_retries", 0, id="no-retries"),
        pytest.param("backoff_factor", 0, id="no-backoff"),
        pytest.param("exit_timeout", 0, id="no-exit-flush"),
        pytest.param("on_queue_full", "block", id="block"),
        pytest.param("verify", False, id="verify-off"),
        pytest.param("verify", requests.utils.DEFAULT_CA_BUNDLE_PATH, id="verify-ca-bundle"),
        pytest.param("proxies", {"https": "http://proxy:3128"}, id="proxies"),
    ],
)
def test_settings_accepts_valid_option(field: str, value: Any) -> None:
    assert getattr(Settings(access_key=KEY, **{field: value}), field) == value


def test_settings_error_is_a_gainsight_error_and_a_value_error() -> None:
    error = config_error(Settings, access_key=KEY, workers=0)
    assert isinstance(error, GainsightError)
    assert isinstance(error, ValueError)


def test_settings_is_frozen() -> None:
    settings = Settings(access_key=KEY)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        settings.timeout = 1.0  # type: ignore[misc]


def test_settings_copies_proxies() -> None:
    proxies = {"https": "http://proxy:3128"}
    settings = Settings(access_key=KEY, proxies=proxies)
    proxies["https"] = "http://evil:3128"
    proxies["http"] = "http://evil:3128"
    assert dict(settings.proxies) == {"https": "http://proxy:3128"}


def test_settings_proxies_are_read_only() -> None:
    settings = Settings(access_key=KEY, proxies={"https": "http://proxy:3128"})
    with pytest.raises(TypeError):
        settings.proxies["http"] = "http://evil:3128"  # type: ignore[index]


def test_settings_proxies_none_means_no_proxies() -> None:
    assert dict(Settings(access_key=KEY, proxies=None).proxies) == {}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("send", "no", id="send-string"),
        pytest.param("sync_mode", 1, id="sync-mode-int"),
    ],
)
def test_modes_must_be_booleans(field: str, value: Any) -> None:
    error = config_error(Settings, access_key=KEY, **{field: value})
    assert str(error) == f"{field}: must be True or False, got {type(value).__name__}"


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("socks5://proxy:1080", id="socks"),
        pytest.param("proxy:3128", id="no-scheme"),
        pytest.param("http://", id="no-host"),
        pytest.param("http://[::1", id="unparseable"),
    ],
)
def test_proxy_urls_must_be_http_with_a_host(url: str) -> None:
    error = config_error(Settings, access_key=KEY, proxies={"https": url})
    assert "proxies['https']" in str(error)


def test_proxy_credentials_are_masked_in_repr() -> None:
    settings = Settings(access_key=KEY, proxies={"https": "http://user:hunter2@proxy:3128"})
    assert "hunter2" not in repr(settings)
    assert "http://****@proxy:3128" in repr(settings)
