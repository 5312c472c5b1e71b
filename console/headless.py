"""Headless Chromium for looking at the console: the one executable lookup and flag set.

The browser tests (tests/console/test_browser.py) and the screenshot script
(scripts/console_screenshot.py) both drive Debian's chromium through playwright with these.
"""

from __future__ import annotations

import shutil

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


def chromium_path() -> str:
    """The chromium on PATH, else Debian's ``/usr/bin/chromium`` (which may not exist: callers check)."""
    return shutil.which("chromium") or "/usr/bin/chromium"
