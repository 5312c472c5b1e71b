"""``sortcam demo`` end to end: real broker, real pty, real TFLM, the real controller; and its report."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_errors import one_line_error

from sortcam.card import ModelCard
from sortcam.sim.demo import Decided, DemoOptions, build_report, run_demo
from sortcam.sim.sorter import Drop, parse_faults
from sortcam.sim.twin import TwinItem

NO_TF = (
    "import sys\n"
    "sys.modules['tensorflow'] = None  # any 'import tensorflow' now fails: the demo must not need it\n"
    "from sortcam.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def test_demo_end_to_end_without_tensorflow(demo_card: ModelCard, tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    items = 8
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            NO_TF,
            "demo",
            "--items",
            str(items),
            "--rate",
            "4",
            "--card",
            str(demo_card.path),
            "--report",
            str(report_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(report_path.read_text())
    for key in ("items", "lost", "duplicates", "routing_accuracy", "bins", "latency_ms"):
        assert key in report
    assert report["items"] == report["published"] == report["sorted"] == items
    assert report["lost"] == 0 and report["duplicates"] == 0 and report["stray_drops"] == 0
    assert report["settled"] and not report["invalid_messages"]
    assert sum(b["count"] for b in report["bins"].values()) == items
    assert sum(sum(b["true_classes"].values()) for b in report["bins"].values()) == items
    assert 0.0 <= report["routing_accuracy"] <= 1.0
    assert report["latency_ms"]["end_to_end"]["n"] == items
    # the live view showed every item and the table was printed
    live = [ln for ln in proc.stdout.splitlines() if " -> " in ln and " sorted " in ln]
    assert len(live) == items and "== sortcam demo report ==" in proc.stdout
    assert "lost 0  duplicates 0" in proc.stdout


def test_demo_with_sorter_faults_loses_nothing(tiny_card: ModelCard) -> None:
    out = io.StringIO()
    report = run_demo(
        DemoOptions(
            items=6,
            rate=0,
            card=tiny_card.path,
            belt_delay_ms=100,
            faults=parse_faults(["no-answer:2", "bad-checksum:1", "drop-line:1"]),
            host_overrides={"ack_timeout_ms": 150},
        ),
        out,
    )
    assert report["lost"] == 0 and report["duplicates"] == 0
    # an ACK lost on the wire may leave its item "missed" at the controller although it
    # moved: it is then in a bin and reported, never silently gone
    assert report["sorted"] + report["missed"] >= 6 and report["sorted"] >= 4
    assert report["sorter"]["repeated_sorts"] >= 1  # retries with the same id, ACKed again


def _rec(seq: int, truth: str, label: str) -> TwinItem:
    return TwinItem(
        boot="b",
        seq=seq,
        source=f"{truth}/{seq}.jpg",
        truth=truth,
        label=label,
        class_id=0,
        confidence=0.9,
        top=[(label, 0.9)],
        latency_ms=3,
        frames=3,
        stable=True,
        published_at=100.0 + seq,
        published_mono=10.0 + seq,
    )


def test_report_counts_lost_duplicates_and_routing(tiny_card: ModelCard) -> None:
    records = {
        ("b", i): _rec(i, t, lbl)
        for i, (t, lbl) in enumerate(
            [("glass", "glass"), ("paper", "cardboard"), ("metal", "glass"), ("trash", "trash")]
        )
    }
    decided = {
        ("cam", "b", 0): Decided("cam", "b", 0, "glass", 4, 11, "label", ["sent", "acked"], 100.1),
        ("cam", "b", 1): Decided("cam", "b", 1, "paper", 1, 12, "label", ["sent", "acked"], 101.1),
        ("cam", "b", 2): Decided("cam", "b", 2, "glass", 4, 13, "label", ["sent", "missed"], 102.1),
        # seq 3: never decided -> lost
    }
    drops = [Drop(11, 4, 10.5, 11.0), Drop(12, 1, 11.5, 12.0), Drop(11, 4, 12.5, 13.0), Drop(99, 2, 1, 2)]
    r = build_report(tiny_card, 5, ["trash/x.jpg"], records, decided, drops, "cam")
    assert r["items"] == 5 and r["published"] == 4 and r["sorted"] == 2
    assert r["duplicates"] == 1 and r["missed"] == 1 and r["stray_drops"] == 1
    assert r["lost"] == 2  # seq 3 and the undetected image
    assert r["routing_accuracy"] == 0.5 and r["label_accuracy"] == 0.5  # glass ok, paper->paper bin ok
    assert r["bins"]["glass"]["true_classes"] == {"glass": 1}
    assert r["bins"]["paper"]["true_classes"] == {"paper": 1}


def test_demo_bad_options_are_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_card: ModelCard
) -> None:
    from sortcam.cli import main

    model = ["--card", str(tiny_card.path)]
    for argv, needle in (
        (["demo", "--items", "0", *model], "--items"),
        (["demo", "--source", str(tmp_path / "none"), *model], "source folder not found"),
        (["demo", "--fault", "melt", *model], "unknown fault"),
        (["demo", "--belt-delay-ms", "-5", *model], "--belt-delay-ms"),
        (["demo", "--card", str(tmp_path / "none.json")], "model card not found"),
    ):
        assert main(argv) != 0, argv
        one_line_error(capsys, needle)


def test_demo_forever_with_console_until_stopped(tiny_card: ModelCard, tmp_path: Path) -> None:
    import threading
    import urllib.request

    stop = threading.Event()
    seen: dict[str, str] = {}

    def on_ready(ready: dict[str, str]) -> None:
        seen.update(ready)
        with urllib.request.urlopen(ready["console"] + "/", timeout=10) as resp:
            seen["http"] = str(resp.status)
        threading.Timer(2.0, stop.set).start()

    report = run_demo(
        DemoOptions(
            card=tiny_card.path,
            rate=5,
            forever=True,
            console=True,
            console_port=0,
            console_data=tmp_path / "console",
            stop_event=stop,
            on_ready=on_ready,
            live=False,
        ),
        io.StringIO(),
    )
    assert seen["http"] == "200" and seen["console"].startswith("http://127.0.0.1:") and seen["token"]
    assert report["items"] >= 3 and report["lost"] == 0 and report["duplicates"] == 0
    assert report["sorted"] == report["items"]


def test_the_report_names_no_gate_apart_from_the_reject_bin(tiny_card: ModelCard) -> None:
    """Issue 14: the report said ``rejected 0`` beside a reject bin holding 3 items."""
    from sortcam.sim.demo import format_report

    records = {("b", 0): _rec(0, "glass", "glass"), ("b", 1): _rec(1, "paper", "paper")}
    decided = {
        ("cam", "b", 0): Decided("cam", "b", 0, "reject", 0, 11, "low_confidence", ["sent", "acked"], 100.1),
        ("cam", "b", 1): Decided("cam", "b", 1, "paper", None, 12, "label", ["rejected"], 101.1),  # no gate for it
    }
    r = build_report(tiny_card, 2, [], records, decided, [Drop(11, 0, 10.5, 11.0)], "cam")
    assert r["no_gate"] == 1 and "rejected" not in r and r["bins"]["reject"]["count"] == 1
    text = format_report(r)
    assert "no gate 1" in text and "rejected" not in text


def test_demo_console_honours_items_then_serves_until_ctrl_c(
    tiny_card: ModelCard, tmp_path: Path, _state_dir: Path
) -> None:
    """--items with --console plays that many, reports, keeps the console up; Ctrl-C ends it without a warning,
    and nothing is left in the working folder (the console's data goes to the state folder)."""
    import signal

    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sortcam.cli",
            "demo",
            "--console",
            "--items",
            "3",
            "--port",
            "0",
            "--rate",
            "5",
            "--card",
            str(tiny_card.path),
        ],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "console still serving" in line:
                break
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines) + rest
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    assert "items 3  published 3  sorted 3  lost 0  duplicates 0" in out and "no gate 0" in out
    assert out.count("== sortcam demo report ==") == 1
    assert f"data in {_state_dir / 'demo-console'}" in out
    assert "WARNING" not in out + err and "reconnect" not in out + err, out[-2000:] + err[-2000:]
    assert list(work.iterdir()) == []
    assert (_state_dir / "demo-console" / "console.db").is_file()


def test_console_options_without_console_are_named(
    tiny_card: ModelCard, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sortcam.cli import main

    assert (
        main(
            [
                "demo",
                "--items",
                "1",
                "--rate",
                "0",
                "--quiet",
                "--data",
                str(tmp_path / "d"),
                "--port",
                "9",
                "--card",
                str(tiny_card.path),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "sortcam: warning: --port, --data only matter with --console; ignored" in err
    assert not (tmp_path / "d").exists()
