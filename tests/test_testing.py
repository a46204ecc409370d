"""gainsight_segment.testing, the package: what it exports, and what importing it costs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gainsight_segment import testing


def test_all_is_sorted_and_complete() -> None:
    assert testing.__all__ == sorted(testing.__all__)
    assert set(testing.__all__) == {
        "DEMO_ACCESS_KEY",
        "Faults",
        "LocalCollector",
        "MockTransport",
        "ReceivedRequest",
        "RecordingClient",
    }


def test_request_is_a_deprecated_alias_of_received_request() -> None:
    with pytest.warns(DeprecationWarning, match=r"testing\.ReceivedRequest"):
        alias = testing.Request  # type: ignore[attr-defined]
    assert alias is testing.ReceivedRequest


def test_request_can_still_be_imported_by_name() -> None:
    namespace: dict[str, object] = {}
    with pytest.warns(DeprecationWarning, match="deprecated"):
        exec("from gainsight_segment.testing import Request", namespace)
    assert namespace["Request"] is testing.ReceivedRequest


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="Nope"):
        testing.Nope  # type: ignore[attr-defined]  # noqa: B018


def test_importing_the_testing_module_does_not_import_pytest() -> None:
    code = (
        "import sys; import gainsight_segment.testing; "
        "print('pytest' in sys.modules or '_pytest' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"
