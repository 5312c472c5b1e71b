"""The console's line view with the shipped model, as a PNG (docs/console-line.png).

Runs the demo line with the console (``sortcam demo --console --items N``: the bundled
photos through the shipped int8 model in TFLM, the host controller, the virtual sorter)
and keeps headless Chromium's view of http://127.0.0.1:PORT/ once all N items are acked.
Needs the dev setup (``scripts/setup.sh --dev``: mosquitto, chromium, playwright).

    .venv/bin/python scripts/console_screenshot.py [--out docs/console-line.png] [--items 24]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from sortcam.console.headless import CHROMIUM_ARGS, chromium_path
from sortcam.net import free_port, wait_port


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/console-line.png")
    ap.add_argument(
        "--items",
        type=int,
        default=24,
        help="items the demo runs before the shot (default 24, the demo's own: its 12 s let the twin send a status "
        "with its frame rate)",
    )
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for them (default 180)")
    args = ap.parse_args()
    if args.items < 1:
        print("console_screenshot: --items must be >= 1", file=sys.stderr)
        return 2
    chromium = chromium_path()
    if not Path(chromium).is_file():
        print("console_screenshot: no chromium (scripts/setup.sh --dev installs it)", file=sys.stderr)
        return 2
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="sortcam-shot-") as tmp:
        env = dict(os.environ, SORTCAM_STATE_DIR=tmp, PYTHONUNBUFFERED="1")
        log = open(Path(tmp) / "demo.log", "wb")  # noqa: SIM115 - the child's
        demo = subprocess.Popen(
            [sys.executable, "-m", "sortcam.cli", "demo", "--console", "--items", str(args.items), "--port", str(port),
             "--quiet", "--broker-kind", "auto", "--token", "screenshot"],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        try:
            if not wait_port("127.0.0.1", port, args.timeout):
                print(f"console_screenshot: the console did not open port {port}; see the demo's output:",
                      file=sys.stderr)  # fmt: skip
                print((Path(tmp) / "demo.log").read_text(errors="replace")[-3000:], file=sys.stderr)
                return 1
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(f"http://127.0.0.1:{port}/")
                ms = int(args.timeout * 1000)
                page.wait_for_function(
                    f"parseInt(document.querySelector('#items-total').textContent) >= {args.items}", timeout=ms
                )
                expect(page.locator("#items tr.item td.status", has_text="sent")).to_have_count(0, timeout=ms)
                page.wait_for_timeout(1500)  # one more poll of every fragment
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=args.out, full_page=False)
                browser.close()
        finally:
            demo.terminate()
            try:
                demo.wait(20)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()
            log.close()
    print(f"wrote {args.out} ({args.items} items of the demo line, the shipped model)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
