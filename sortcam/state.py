"""Where sortcam keeps what a user gave no place for: the host's event log, the console's data.

Nothing lands in the working folder unasked. The state folder is ``$SORTCAM_STATE_DIR`` when
set, else the platform's: ``$XDG_STATE_HOME/sortcam`` on Linux (``~/.local/state/sortcam``
when unset, per the XDG Base Directory spec: state that outlives a run but is no user
document), ``~/Library/Application Support/sortcam`` on macOS, ``%LOCALAPPDATA%\\sortcam``
on Windows. Commands print the paths they use; the folder is made when first written.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV = "SORTCAM_STATE_DIR"


def state_dir() -> Path:
    """The state folder (see the module doc); not created here."""
    env = os.environ.get(ENV)
    if env:
        return Path(env).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "sortcam"
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "sortcam"
    xdg = os.environ.get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"  # relative: ignored
    return base / "sortcam"


def host_db(line: str) -> Path:
    """The default state db and event log of ``sortcam host --line LINE`` (its lock file sits beside it)."""
    return state_dir() / f"host-{line}.db"


def host_dbs() -> list[Path]:
    """The host state dbs in the state folder, for commands that look one up."""
    folder = state_dir()
    return sorted(folder.glob("host-*.db")) if folder.is_dir() else []


def console_data() -> Path:
    """The default data folder of ``sortcam console`` (samples, labels, retrain jobs)."""
    return state_dir() / "console"


def demo_console_data() -> Path:
    """The default data folder of ``sortcam demo --console``."""
    return state_dir() / "demo-console"
