"""The rejects file of a replay."""

from __future__ import annotations

import io

from gainsight_segment.cli._rejects import RejectWriter


class _FailingStream(io.StringIO):
    def __init__(self, *errors: OSError) -> None:
        super().__init__()
        self._errors = list(errors)

    def write(self, text: str) -> int:
        raise self._errors.pop(0)


def test_reject_writer_keeps_the_first_write_error_instead_of_raising() -> None:
    first, second = OSError(28, "No space left on device"), OSError(5, "I/O error")
    writer = RejectWriter(_FailingStream(first, second))
    writer.write(1, "bad", "x", kind="invalid")
    writer.write(2, "not delivered", {}, kind="undelivered")
    assert writer.write_error == first
    assert writer.counts == {"invalid": 1, "undelivered": 1, "not attempted": 0}
