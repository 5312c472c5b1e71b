"""``sortcam flash`` and ``sortcam monitor``: thin wrappers over PlatformIO.

The firmware builds with PlatformIO from ``platformio.ini`` at the repository root
(docs/firmware.md). These verbs find the ``pio`` executable (the ``firmware`` extra:
``pip install 'sortcam[firmware]'``), check what a build needs before the long
toolchain run starts, and pass the exit code through.

- ``sortcam flash [-e esp32cam|esp32s3cam|sorter] [--port PORT] [--no-upload]``
  runs ``pio run -e ENV -t upload [--upload-port PORT]`` (``--no-upload``: build only).
- ``sortcam monitor [-e ENV] [--port PORT] [--baud 115200]``
  runs ``pio device monitor -e ENV [-p PORT] [-b BAUD]``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from sortcam.checkout import repo_root
from sortcam.errors import DependencyError, ModelError, SortcamError, UsageError

REPO = repo_root()
CAMERA_ENVS: tuple[str, ...] = ("esp32cam", "esp32s3cam")
"""The camera firmware's envs in platformio.ini: AI-Thinker ESP32-CAM, ESP32-S3 camera boards."""
ENVS: tuple[str, ...] = (*CAMERA_ENVS, "sorter")
MODEL_SOURCES: tuple[str, ...] = ("model_data.h", "model_data.cc", "model_settings.h", "model_ops.h")
"""What ``sortcam export`` writes into ``firmware/src``; the camera build needs all four."""
DEFAULT_BAUD = 115200


def find_pio() -> list[str]:
    """The command that runs PlatformIO: ``pio`` on PATH, else ``python -m platformio``."""
    for name in ("pio", "platformio"):
        path = shutil.which(name)
        if path:
            return [path]
    try:
        import platformio  # noqa: F401
    except ImportError:
        raise DependencyError(
            "PlatformIO is not installed: pip install 'sortcam[firmware]' (or see https://platformio.org/install)"
        ) from None
    return [sys.executable, "-m", "platformio"]


def project_dir(path: str | Path | None = None) -> Path:
    """The folder holding ``platformio.ini`` (the repository root unless given)."""
    root = Path(path) if path is not None else (REPO or Path.cwd())
    if not (root / "platformio.ini").is_file():
        raise UsageError(
            f"no platformio.ini in {root}: run from a checkout of the sortcam repository or pass --project-dir"
        )
    return root


def check_camera_sources(root: Path) -> None:
    """The camera build needs the generated model sources; say how to make them."""
    missing = [name for name in MODEL_SOURCES if not (root / "firmware" / "src" / name).is_file()]
    if missing:
        raise ModelError(
            f"firmware/src lacks {', '.join(missing)}: run 'sortcam export' to generate the model sources first"
        )


def flash_command(env: str, port: str | None, upload: bool = True) -> list[str]:
    if env not in ENVS:
        raise UsageError(f"unknown firmware env {env!r}: expected one of {', '.join(ENVS)}")
    cmd = ["run", "-e", env]
    if upload:
        cmd += ["-t", "upload"]
        if port:
            cmd += ["--upload-port", port]
    return cmd


def monitor_command(env: str, port: str | None, baud: int) -> list[str]:
    if env not in ENVS:
        raise UsageError(f"unknown firmware env {env!r}: expected one of {', '.join(ENVS)}")
    if baud <= 0:
        raise UsageError(f"--baud must be positive, got {baud}")
    cmd = ["device", "monitor", "-e", env, "-b", str(baud)]
    if port:
        cmd += ["-p", port]
    return cmd


def run_pio(args: list[str], root: Path) -> int:
    """Run PlatformIO in ``root``; a failure becomes a one-line :class:`SortcamError`."""
    cmd = find_pio() + args
    print(f"$ {' '.join(cmd)}", file=sys.stderr)
    try:
        rc = subprocess.call(cmd, cwd=root)
    except OSError as exc:
        raise DependencyError(f"cannot run PlatformIO ({cmd[0]}): {exc}") from None
    if rc != 0:
        raise SortcamError(f"'pio {' '.join(args)}' failed with exit code {rc} (see its output above)")
    return 0


def flash(env: str = "esp32cam", port: str | None = None, upload: bool = True, root: str | Path | None = None) -> int:
    """Build (and by default upload) one firmware env."""
    proj = project_dir(root)
    if env in CAMERA_ENVS:
        check_camera_sources(proj)
        if not (proj / "secrets.ini").is_file():
            print(
                "sortcam: note: no secrets.ini: the camera boots without Wi-Fi settings "
                "(copy secrets.ini.example to secrets.ini)",
                file=sys.stderr,
            )
    return run_pio(flash_command(env, port, upload), proj)


def monitor(
    env: str = "esp32cam", port: str | None = None, baud: int = DEFAULT_BAUD, root: str | Path | None = None
) -> int:
    """Open PlatformIO's serial monitor (exit with Ctrl+C)."""
    proj = project_dir(root)
    return run_pio(monitor_command(env, port, baud), proj)


def _flash(args: argparse.Namespace) -> int:
    return flash(args.env, args.port, not args.no_upload, args.project_dir)


def _monitor(args: argparse.Namespace) -> int:
    return monitor(args.env, args.port, args.baud, args.project_dir)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``flash`` and ``monitor`` to the ``sortcam`` command."""
    p = subparsers.add_parser("flash", help="build and upload firmware with PlatformIO (docs/firmware.md)")
    p.add_argument("-e", "--env", choices=ENVS, default="esp32cam", help="firmware to build (default: esp32cam)")
    p.add_argument("--port", help="serial port of the board (default: PlatformIO auto-detects)")
    p.add_argument("--no-upload", action="store_true", help="build only")
    p.add_argument("--project-dir", help="folder with platformio.ini (default: this checkout)")
    p.set_defaults(func=_flash)
    m = subparsers.add_parser("monitor", help="serial monitor of a board (PlatformIO)")
    m.add_argument("-e", "--env", choices=ENVS, default="esp32cam", help="env whose monitor settings to use")
    m.add_argument("--port", help="serial port (default: auto-detect)")
    m.add_argument("--baud", type=int, default=DEFAULT_BAUD, help=f"baud rate (default: {DEFAULT_BAUD})")
    m.add_argument("--project-dir", help="folder with platformio.ini (default: this checkout)")
    m.set_defaults(func=_monitor)


def register_bench(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """No benchmark targets here: the chip's timing is measured on the chip (status ``invoke_ms``)."""
