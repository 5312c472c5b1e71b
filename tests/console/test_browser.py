"""End to end in a real browser: headless Chromium (Debian ``chromium``) driven by
Playwright against ``sortcam console`` on localhost, fed by a real line: mosquitto, the
virtual sorter on a pty, the host controller and the device twin, all as processes.

The flywheel: the line view fills with items (thumbnails from the twin's samples), a
photo upload is classified, an item from the queue is labelled, a tiny retrain runs
(MobileNetV2 from random weights at the line's 32x32 input, one epoch) and its
candidate is promoted into a temp model dir; the retained model announcement reaches
the broker. Set ``SORTCAM_CONSOLE_SCREENSHOT=FILE`` to keep the line view's screenshot
(of the tiny model; the docs' one comes from ``scripts/console_screenshot.py``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_helpers import CLASSES, SAMPLES, TOKEN

from sortcam.console.headless import CHROMIUM_ARGS, chromium_path
from sortcam.net import free_port, wait_port

CHROMIUM = chromium_path()

pytestmark = pytest.mark.browser


def _need(cond: bool, why: str) -> None:
    if not cond:
        pytest.skip(why)


class Procs:
    """Child processes of the line; every one is stopped at the end, its output kept for failures."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        out = open(self.logdir / f"{name}.log", "wb")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "sortcam.cli", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        out.close()
        self.procs.append((name, proc))
        return proc

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{self.log(name)}")

    def log(self, name: str) -> str:
        return (self.logdir / f"{name}.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture()
def line(tmp_path: Path, broker: str, model_dir: Path) -> Iterator[dict[str, Any]]:
    """The demo line (sorter, host, twin) and the console, all real processes, on ``broker``."""
    procs = Procs(tmp_path)
    data = tmp_path / "console-data"
    # earlier labelling sessions: a few labelled photos per class already in the training layout
    for c in CLASSES:
        (data / "labelled" / c).mkdir(parents=True)
        for f in sorted((SAMPLES / c).glob("*.jpg"))[1:]:
            shutil.copyfile(f, data / "labelled" / c / f.name)
    port = free_port()
    link = tmp_path / "sorter"
    exporter = importlib.util.find_spec("sortcam.tools.export") is not None
    fw = tmp_path / "fw" if exporter else None
    try:
        procs.start("sorter", "sim", "sorter", "--link", str(link))
        deadline = time.monotonic() + 20
        while not link.exists() and time.monotonic() < deadline:
            procs.check_alive()
            time.sleep(0.1)
        assert link.exists(), procs.log("sorter")
        procs.start(
            "host",
            "host",
            "--broker",
            broker,
            "--serial",
            str(link),
            "--line",
            "line1",
            "--card",
            str(model_dir / "line.json"),
            "--state-db",
            str(tmp_path / "host.db"),
            "--threshold",
            "0.1",
        )
        procs.start(
            "console",
            "console",
            "--broker",
            broker,
            "--port",
            str(port),
            "--line",
            "line1",
            "--data",
            str(data),
            "--token",
            TOKEN,
            "--card",
            str(model_dir / "line.json"),
            "--firmware-dir",
            str(fw) if fw else "none",
            "--min-per-class",
            "2",
            "--retrain-weights",
            "none",
            "--retrain-epochs",
            "1",
            "--retrain-fine-tune-epochs",
            "0",
            "--retrain-batch",
            "8",
        )
        assert wait_port("127.0.0.1", port, 30), procs.log("console")
        procs.start(
            "twin",
            "sim",
            "camera",
            "--source",
            str(SAMPLES),
            "--broker",
            broker,
            "--device",
            "cam1",
            "--card",
            str(model_dir / "line.json"),
            "--rate",
            "4",
            "--loop",
        )
        yield {
            "url": f"http://127.0.0.1:{port}",
            "procs": procs,
            "model_dir": model_dir,
            "fw": fw,
            "data": data,
            "broker": broker,
        }
    finally:
        procs.stop()


def retained_model(broker: str) -> dict[str, Any] | None:
    """The retained ``sortcam/model`` announcement, read by a fresh subscriber."""
    import threading

    import paho.mqtt.client as mqtt

    from sortcam.console.feed import parse_broker_url

    b = parse_broker_url(broker)
    got: list[bytes] = []
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"check-{time.monotonic_ns()}")

    def on_message(c: Any, u: Any, msg: Any) -> None:
        got.append(bytes(msg.payload))
        done.set()

    client.on_message = on_message
    client.on_connect = lambda c, *a: c.subscribe("sortcam/model", 1)
    client.connect(b.host, b.port)
    client.loop_start()
    done.wait(10)
    client.loop_stop()
    client.disconnect()
    return json.loads(got[0]) if got else None


def test_console_flywheel_in_chromium(line: dict[str, Any], tmp_path: Path) -> None:
    _need(Path(CHROMIUM).exists(), "Debian chromium is not installed (scripts/setup.sh --dev)")
    _need(
        importlib.util.find_spec("playwright") is not None, "playwright is not installed (pip install 'sortcam[test]')"
    )
    from playwright.sync_api import expect, sync_playwright

    url, procs = line["url"], line["procs"]
    train_ok = importlib.util.find_spec("tensorflow") is not None
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)
        try:
            # 1. the line view fills in by itself (polling): items with thumbnails, bins, the twin online
            page.goto(url + "/")
            expect(page.locator("#devices tr[data-device='cam1'] td.state")).to_have_text("online", timeout=60_000)
            expect(page.locator("#items tr.item")).not_to_have_count(0, timeout=60_000)
            expect(page.locator("#items tr.item td.thumb img").first).to_be_visible(timeout=60_000)
            expect(page.locator("#items tr.item td.status", has_text="acked").first).to_be_visible(timeout=60_000)
            first = int(page.locator("#items-total").inner_text())
            page.wait_for_function(f"parseInt(document.querySelector('#items-total').textContent) > {first}")
            expect(page.locator("#bins td[data-bin]").first).to_be_visible()
            shot = os.environ.get("SORTCAM_CONSOLE_SCREENSHOT")
            page.screenshot(path=shot or str(tmp_path / "line.png"), full_page=False)
            procs.check_alive()

            # 2. classify two real photos
            page.goto(url + "/classify")
            photos = [str(sorted((SAMPLES / c).glob("*.jpg"))[0]) for c in ("glass", "paper")]
            page.set_input_files("#photos", photos)
            page.click("#classify")
            expect(page.locator(".result")).to_have_count(2)
            for i in range(2):
                res = page.locator(".result").nth(i)
                assert res.locator(".top-label").inner_text() in CLASSES
                expect(res.locator("table.top3 tr")).to_have_count(3)
                src = res.locator("img.model-input").get_attribute("src")
                assert src is not None and src.startswith("data:image/png;base64,")

            # 3. sign in and label the first queued item (its frame came from the twin)
            page.goto(url + "/queue")
            expect(page.locator("text=Sign in to label.")).to_be_visible()
            page.click("#signin")
            page.fill("#token", TOKEN)
            page.click("#login")
            page.goto(url + "/queue")
            item = page.locator(".qitem").first
            expect(item).to_be_visible(timeout=30_000)
            key = item.get_attribute("data-key")
            assert key is not None, "a queued item without data-key"
            item.locator("select[name=label]").select_option("metal")
            item.locator("button.confirm").click()
            expect(page.locator(".flash")).to_contain_text(f"labelled {key} as metal")
            dev, boot, seq = key.split("/")
            assert (line["data"] / "labelled" / "metal" / f"{dev}_{boot}_{seq}.jpg").is_file()

            if not train_ok:
                pytest.skip("retrain and promote need TensorFlow (pip install 'sortcam[train]')")
            # 4. a tiny retrain in the background, progress shown, metrics side by side
            page.goto(url + "/retrain")
            page.check("input[name=mode][value=scratch]")
            page.click("#start-retrain")
            expect(page.locator("#job-status")).to_have_text(re.compile("done|failed"), timeout=300_000)
            if page.locator("#job-status").inner_text() != "done":
                raise AssertionError(
                    "retrain failed: "
                    + page.locator("#job-error").inner_text()
                    + "\n"
                    + page.locator("#job-log").inner_text()
                )
            expect(page.locator("#compare td.m-candidate")).to_be_visible()
            expect(page.locator("#compare td.m-current")).to_be_visible()

            # 5. promote on explicit action (a confirm dialog), into the temp model dir
            old_card = json.loads((line["model_dir"] / "line.json").read_text())
            page.on("dialog", lambda d: d.accept())
            page.click("#promote")
            expect(page.locator("#promoted")).to_be_visible()
            new_card = json.loads((line["model_dir"] / "line.json").read_text())
            assert new_card["sha256"] != old_card["sha256"] and "promoted" in new_card
            from sortcam.card import sha256_file

            assert sha256_file(line["model_dir"] / "line.tflite") == new_card["sha256"]
            assert (line["model_dir"] / "history" / old_card["sha256"][:12] / "line.tflite").is_file()
            if line["fw"] is not None:
                assert any(line["fw"].iterdir())
            ann = retained_model(line["broker"])
            assert ann is not None and ann["sha256"] == new_card["sha256"]
            # the twin reloaded the promoted model and says so in its status
            page.goto(url + "/")
            expect(page.locator("#devices tr[data-device='cam1'] code")).to_have_text(new_card["sha256"][:12])
            procs.check_alive()
        finally:
            browser.close()
