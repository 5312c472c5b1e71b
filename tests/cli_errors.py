"""One check for the rule "bad input gets a clear, one-line error".

Every ``sortcam`` command that refuses its input writes exactly one line to stderr,
``sortcam: error: <reason>``, and exits non-zero (1, or 2 for a usage error). Tests
import :func:`one_line_error` (``tests/`` is on ``sys.path`` through its conftest).
"""

from __future__ import annotations

import pytest

PREFIX = "sortcam: error: "


def one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    """The single ``sortcam: error:`` line on stderr since the last read; it must contain every needle.

    Fails when stderr is empty, has more than one line (a traceback, a usage dump, a second
    message), lacks the prefix, or misses a needle. Returns the line for further checks.
    """
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, f"expected one error line, got {len(err)}: {err}"
    line = err[0]
    assert line.startswith(PREFIX), f"error line lacks {PREFIX!r}: {line}"
    missing = [n for n in needles if n not in line]
    assert not missing, f"error line lacks {missing}: {line}"
    return line
