"""`sortcam evaluate` writes report.html: one file, no network, every figure embedded and shown.

The page is opened from disk in the real headless Chromium (Debian ``chromium``, driven by
Playwright, as the console's browser test does) with the network cut off: it must render,
and every image must load.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from tinydata import TinyModel

from sortcam.cli import main

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _evaluate(tiny_model: TinyModel, out: Path) -> Path:
    assert main(["evaluate", str(tiny_model.tflite), str(tiny_model.data), "--out", str(out)]) == 0
    return out / "report.html"


def test_report_is_one_self_contained_file(tiny_model: TinyModel, tmp_path: Path) -> None:
    report = _evaluate(tiny_model, tmp_path / "ev")
    text = report.read_text()
    # No fetch of anything: every src is inline data, and nothing links outside the page.
    srcs = re.findall(r'src="([^"]*)"', text)
    assert len(srcs) == 3 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "http://" not in text and "https://" not in text
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    lo, hi = metrics["accuracy_interval95"]
    assert 0.0 <= lo <= metrics["accuracy"] <= hi <= 1.0
    for name in ("blue", "green", "red"):
        assert name in text
    assert "95% Wilson" in text and "Training curves" in text and "Model card" in text


@pytest.mark.browser
def test_report_renders_in_headless_chromium_with_every_image(tiny_model: TinyModel, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing (scripts/setup.sh --dev installs it)")
        pytest.skip("chromium not installed (scripts/setup.sh --dev installs it)")
    playwright = pytest.importorskip("playwright.sync_api")
    report = _evaluate(tiny_model, tmp_path / "ev")
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(offline=True)
            page = context.new_page()
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report.as_uri())
            page.wait_for_load_state("load")
            assert page.locator("h1").inner_text().startswith("tiny.tflite")
            sizes = page.eval_on_selector_all(
                "img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
            )
            assert len(sizes) == 3
            assert all(ok and w > 100 and h > 100 for ok, w, h in sizes), sizes
            assert all(u.startswith(("file:", "data:")) for u in requests), requests
        finally:
            browser.close()
