"""Console API: the line view fed through the real MQTT parsing path, classify, labels,
retrain and promote, and every bad input the issue lists (Flask test client)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from console_helpers import CLASSES, DATA, TOKEN, auth, classification, decision, jpeg, sample_photos

from sortcam import mqtt_contract as mc
from sortcam.errors import ContractError


def feed_of(con: Any) -> Any:
    from sortcam.console.feed import MqttFeed

    return MqttFeed(con.store, "mqtt://127.0.0.1:1", "sortcam", "line1", con.data_dir)


def put_item(
    con: Any,
    seq: int,
    label: str = "paper",
    conf: float = 0.4,
    with_sample: bool = True,
    status: str = "acked",
    bin_name: str | None = None,
) -> None:
    feed = feed_of(con)
    feed.handle("sortcam/cam1/classification", classification("cam1", "b00t", seq, label, conf))
    reason = "label" if conf >= 0.6 else "low_confidence"
    bin_name = bin_name or ("paper" if conf >= 0.6 else "reject")
    feed.handle("sortcam/line/line1/decision", decision("cam1", "b00t", seq, label, bin_name, reason, status))
    if with_sample:
        feed.handle(
            "sortcam/cam1/sample",
            mc.encode_sample(
                device="cam1", boot="b00t", seq=seq, jpeg=jpeg(), label=label, confidence=conf, width=64, height=48
            ),
        )


# --- line view ----------------------------------------------------------------------------


def test_line_view_merges_messages_and_highlights(console: Any) -> None:
    client = console.app.test_client()
    feed = feed_of(console)
    put_item(console, 1, "paper", 0.9, with_sample=False)
    put_item(console, 2, "glass", 0.3, status="missed")
    # a late "sent" after "acked" must not undo the outcome
    feed.handle("sortcam/line/line1/decision", decision("cam1", "b00t", 1, "paper", "paper", "label", "sent"))
    online = {
        "device": "cam1",
        "state": "online",
        "fw": "1.0",
        "model": "abcdef012345",
        "uptime_s": 5,
        "free_heap": 123456,
        "rssi": -50,
        "fps": 4.5,
    }
    feed.handle("sortcam/cam1/status", mc.encode(online))
    feed.handle("sortcam/cam1/status", mc.offline_status("cam1"))
    data = client.get("/api/line").get_json()
    items = {it["seq"]: it for it in data["items"]}
    assert items[1]["status"] == "acked" and items[1]["bin"] == "paper" and items[1]["sample"] is None
    assert items[2]["highlight"] == "missed" and items[2]["sample"] == "samples/cam1/b00t/2.jpg"
    assert data["summary"]["bins"] == {"paper": 1, "reject": 1}
    assert data["summary"]["missed"] == 1 and data["summary"]["items_last_minute"] == 2
    dev = data["devices"][0]
    assert dev["state"] == "offline" and dev["free_heap"] == 123456 and dev["model"] == "abcdef012345"
    html = client.get("/line/partial").get_data(as_text=True)
    assert 'class="item missed"' in html and "/samples/cam1/b00t/2.jpg" in html
    assert client.get("/samples/cam1/b00t/2.jpg").data[:2] == b"\xff\xd8"
    assert client.get("/samples/cam1/b00t/99.jpg").status_code == 404


@pytest.mark.parametrize(
    "topic,payload",
    [
        ("sortcam/cam1/classification", b"{not json"),
        ("sortcam/cam1/classification", classification("cam2", "b", 1, "paper", 0.5)),  # device differs from topic
        ("sortcam/cam1/sample", b'{"v":1,"device":"cam1","boot":"b","seq":1,"jpeg":"!!!"}'),
        ("sortcam/cam1/sample", mc.encode({"device": "cam1", "boot": "b", "seq": 1, "jpeg": "aGVsbG8="})),  # not a JPEG
        ("sortcam/line/line1/decision", mc.encode({"device": "cam1", "boot": "b", "seq": -1})),
        ("sortcam/model", b'{"v":1,"model":"xyz"}'),
    ],
)
def test_bad_messages_raise_contract_errors(console: Any, topic: str, payload: bytes) -> None:
    with pytest.raises(ContractError):
        feed_of(console).handle(topic, payload)
    assert console.store.recent() == []


def test_sample_payload_limits() -> None:
    with pytest.raises(ContractError, match="not a JPEG"):
        mc.encode_sample(device="cam1", boot="b", seq=1, jpeg=b"\x89PNG....")
    with pytest.raises(ContractError, match="exceeds"):
        mc.encode_sample(device="cam1", boot="b", seq=1, jpeg=b"\xff\xd8" + bytes(mc.SAMPLE_MAX_PAYLOAD))
    limiter = mc.SampleRateLimiter(min_interval_s=2.0)
    assert [limiter.allow(t) for t in (0.0, 1.0, 2.5, 2.6)] == [True, False, True, False]
    assert limiter.dropped == 2


# --- classify -----------------------------------------------------------------------------


def test_classify_real_photos(console: Any) -> None:
    photos = sample_photos()
    if len(photos) < 2:
        photos = []
    files = [(io.BytesIO(p.read_bytes()), p.name) for p in photos] or [
        (io.BytesIO(jpeg()), "a.jpg"),
        (io.BytesIO(jpeg((9, 9, 9))), "b.jpg"),
    ]
    r = console.app.test_client().post("/api/classify", data={"photos": files}, content_type="multipart/form-data")
    assert r.status_code == 200, r.get_data(as_text=True)
    results = r.get_json()["results"]
    assert len(results) == len(files)
    for res in results:
        assert len(res["top"]) == 3 and res["label"] in CLASSES and res["top"][0][0] == res["label"]
        assert abs(sum(p for _, p in res["top"])) <= 1.0001
        assert res["bin"] == console.classifier.card.bins[res["label"]]
        assert isinstance(res["biodegradable"], bool)
        assert res["model_input_uri"].startswith("data:image/png;base64,")
    # the HTML page shows the same
    html = (
        console.app.test_client()
        .post("/classify", data={"photos": [(io.BytesIO(jpeg()), "x.jpg")]}, content_type="multipart/form-data")
        .get_data(as_text=True)
    )
    assert 'class="model-input"' in html and "bin <strong" in html


def test_classify_matches_runtime_directly(console: Any) -> None:
    """The console's answer is the TFLM runtime's on the one preprocessing."""
    import numpy as np

    from sortcam.preprocess import decode_image, preprocess_int8
    from sortcam.runtime import Int8Classifier

    data = jpeg((200, 30, 40), (80, 60))
    card = console.classifier.card
    clf = Int8Classifier(card.model_path)
    x = preprocess_int8(
        decode_image(data),
        card.input.height,
        card.input.width,
        clf.input_quant.scale,
        clf.input_quant.zero_point,
        card.preprocess.fit,
        card.preprocess.range,
    )
    expect = card.classes[int(np.argmax(clf.invoke_int8(x)))]
    assert console.classifier.classify_bytes(data).label == expect


def _big_png(w: int, h: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (w, h)).save(buf, "PNG", optimize=True)
    return buf.getvalue()


@pytest.mark.parametrize(
    "name,data,status,message",
    [
        ("notes.txt", b"hello, not an image", 400, "not an image"),
        ("empty.jpg", b"", 400, "empty file"),
        ("truncated.jpg", jpeg()[:40], 400, "truncated.jpg"),
        ("huge.bin", b"\xff\xd8" + bytes(2 * 1024 * 1024), 413, "upload too large"),
        ("bomb.png", _big_png(9000, 9000), 400, "MP limit"),
    ],
)
def test_classify_bad_uploads(console: Any, name: str, data: bytes, status: int, message: str) -> None:
    r = console.app.test_client().post(
        "/api/classify", data={"photos": [(io.BytesIO(data), name)]}, content_type="multipart/form-data"
    )
    assert r.status_code == status
    assert message in r.get_json()["error"]
    html = console.app.test_client().post(
        "/classify", data={"photos": [(io.BytesIO(data), name)]}, content_type="multipart/form-data"
    )
    assert html.status_code == status and message in html.get_data(as_text=True)


def test_classify_without_files_and_too_many(console: Any) -> None:
    c = console.app.test_client()
    assert "no photo uploaded" in c.post("/api/classify", data={}).get_json()["error"]
    many = {"photos": [(io.BytesIO(jpeg()), f"{i}.jpg") for i in range(17)]}
    assert "at most 16" in c.post("/api/classify", data=many, content_type="multipart/form-data").get_json()["error"]


# --- auth and labelling ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/label", "/api/items/flag", "/api/retrain", "/api/retrain/x/promote"])
def test_state_changes_need_the_token(console: Any, path: str) -> None:
    c = console.app.test_client()
    r = c.post(path, json={"device": "cam1", "boot": "b00t", "seq": 1, "label": "paper", "mode": "scratch"})
    assert r.status_code == 401 and "token" in r.get_json()["error"]
    r = c.post(path, json={"device": "cam1"}, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401


def test_read_only_pages_refuse_remote_clients(console: Any) -> None:
    c = console.app.test_client()
    assert c.get("/api/line", environ_base={"REMOTE_ADDR": "192.168.1.20"}).status_code == 401
    assert c.get("/api/line", environ_base={"REMOTE_ADDR": "192.168.1.20"}, headers=auth()).status_code == 200
    assert c.get("/api/line").status_code == 200


def test_sign_in_with_the_form(console: Any) -> None:
    c = console.app.test_client()
    assert c.post("/login", data={"token": "nope"}).status_code == 401
    assert c.post("/login", data={"token": TOKEN}).status_code == 302
    put_item(console, 5)
    r = c.post("/queue/label", data={"device": "cam1", "boot": "b00t", "seq": "5", "label": "glass"})
    assert r.status_code == 302


def test_label_confirm_and_correct(console: Any) -> None:
    c = console.app.test_client()
    put_item(console, 3, "paper", 0.42)
    put_item(console, 4, "paper", 0.95)  # confident: not in the queue
    queue = c.get("/api/queue").get_json()["items"]
    assert [it["seq"] for it in queue] == [3]
    r = c.post("/api/label", json={"device": "cam1", "boot": "b00t", "seq": 3, "label": "paper"}, headers=auth())
    assert r.status_code == 200, r.get_json()
    root = console.labels.root
    assert (root / "paper" / "cam1_b00t_3.jpg").read_bytes()[:2] == b"\xff\xd8"
    assert c.get("/api/queue").get_json()["items"] == []
    # a correction moves the image: the item lives in exactly one class folder
    c.post("/api/label", json={"device": "cam1", "boot": "b00t", "seq": 3, "label": "cardboard"}, headers=auth())
    assert not (root / "paper" / "cam1_b00t_3.jpg").exists() and (root / "cardboard" / "cam1_b00t_3.jpg").exists()
    # a flagged confident item joins the queue
    r = c.post("/api/items/flag", json={"device": "cam1", "boot": "b00t", "seq": 4}, headers=auth())
    assert r.status_code == 200
    assert [it["seq"] for it in c.get("/api/queue").get_json()["items"]] == [4]


@pytest.mark.parametrize(
    "body,message",
    [
        ({"device": "cam1", "boot": "b00t", "seq": 3, "label": "banana"}, "unknown label 'banana'"),
        ({"device": "cam1", "boot": "b00t", "seq": 77, "label": "paper"}, "no item cam1/b00t/77"),
        ({"device": "cam1", "boot": "b00t", "seq": 8, "label": "paper"}, "has no image"),
        ({"device": "../etc", "boot": "b00t", "seq": 3, "label": "paper"}, "named by device, boot and seq"),
        ({"device": "cam1", "boot": "b00t", "seq": "x", "label": "paper"}, "named by device, boot and seq"),
    ],
)
def test_label_bad_input(console: Any, body: dict[str, Any], message: str) -> None:
    put_item(console, 3)
    put_item(console, 8, with_sample=False)
    r = console.app.test_client().post("/api/label", json=body, headers=auth())
    assert r.status_code == 400 and message in r.get_json()["error"]
    assert console.labels.counts() == {}


# --- retrain ------------------------------------------------------------------------------------


def label_n(con: Any, per_class: dict[str, int]) -> None:
    seq = 100
    for label, n in per_class.items():
        for _ in range(n):
            seq += 1
            put_item(con, seq, label, 0.3)
            con.label_item("cam1", "b00t", seq, label)


def test_retrain_too_few_images_per_class(console: Any) -> None:
    label_n(console, {"paper": 3, "glass": 1})
    r = console.app.test_client().post("/api/retrain", json={"mode": "scratch"}, headers=auth())
    assert r.status_code == 400
    err = r.get_json()["error"]
    assert "too few images per class" in err and "cardboard 0" in err and "metal 0" in err
    assert console.jobs.current is None and not any(console.jobs.jobs_dir.iterdir())


@pytest.mark.parametrize(
    "mode,message",
    [
        ("banana", "unknown retrain mode"),
        ("oldnew", "needs the old training data"),
    ],
)
def test_retrain_bad_mode(console: Any, mode: str, message: str) -> None:
    label_n(console, {c: 3 for c in CLASSES})
    r = console.app.test_client().post("/api/retrain", json={"mode": mode}, headers=auth())
    assert r.status_code == 400 and message in r.get_json()["error"]


def test_retrain_without_tensorflow_says_so(console: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from sortcam.console import modelops

    monkeypatch.setattr(modelops.importlib.util, "find_spec", lambda name: None)
    r = console.app.test_client().post("/api/retrain", json={"mode": "scratch"}, headers=auth())
    assert r.status_code == 400 and "sortcam[train]" in r.get_json()["error"]
    assert "sortcam[train]" in console.app.test_client().get("/retrain").get_data(as_text=True)


def test_two_retrains_at_once(console: Any, tmp_path: Path) -> None:
    from sortcam.console.retrain import Job

    label_n(console, {c: 3 for c in CLASSES})
    busy = Job("busy-job", "scratch", tmp_path, time.time(), subprocess.Popen(["sleep", "30"]))
    console.jobs.current = busy
    try:
        r = console.app.test_client().post("/api/retrain", json={"mode": "scratch"}, headers=auth())
        assert r.status_code == 409 and "already running (job busy-job" in r.get_json()["error"]
    finally:
        busy.proc.kill()
        busy.proc.wait()


# --- promote ------------------------------------------------------------------------------------


def fake_finished_job(con: Any, tmp_path: Path, classes: list[str] | None = None) -> str:
    """A job folder as the worker leaves it, with the tiny model as the candidate."""
    from sortcam.console.retrain import Job

    d = tmp_path / "job"
    (d / "candidate").mkdir(parents=True)
    shutil.copyfile(DATA / "tiny.tflite", d / "candidate" / "candidate.tflite")
    card = json.loads((DATA / "tiny.json").read_text())
    card["tflite"] = "candidate.tflite"
    if classes is not None:
        card["classes"] = classes
    (d / "candidate" / "candidate.json").write_text(json.dumps(card))
    m = {"images": 6, "accuracy": 0.5, "macro_f1": 0.4, "recall": {}}
    (d / "result.json").write_text(
        json.dumps(
            {
                "ok": True,
                "mode": "scratch",
                "candidate_card": str(d / "candidate" / "candidate.json"),
                "metrics": {"candidate": m, "current": m},
                "candidate_model": "x",
                "current_model": "y",
                "val_source": "t",
                "flash_bytes": 1,
                "arena_bytes": 1,
            }
        )
    )
    job = Job("fakejob", "scratch", d, time.time(), None)
    con.jobs.jobs["fakejob"] = job
    con.jobs.current = job
    return "fakejob"


def snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def fake_exporter(tflite: Path, card_path: Path, out_dir: Path) -> list[Path]:
    data = tflite.read_bytes()
    (out_dir / "model_data.cc").write_text(f"// Generated by sortcam export, do not edit\n// {len(data)} bytes\n")
    (out_dir / "model_settings.h").write_text("// Generated by sortcam export, do not edit\n")
    return [out_dir / "model_data.cc", out_dir / "model_settings.h"]


def test_promote_classes_differ_from_bin_map(console: Any, tmp_path: Path, model_dir: Path) -> None:
    job = fake_finished_job(console, tmp_path, ["cardboard", "glass", "metal", "paper", "plastic", "styrofoam"])
    before = snapshot(model_dir)
    r = console.app.test_client().post(f"/api/retrain/{job}/promote", headers=auth())
    assert r.status_code == 400
    err = r.get_json()["error"]
    assert "differ from the line's bin map" in err and "styrofoam" in err and "trash" in err
    assert snapshot(model_dir) == before
    assert not (tmp_path / "fw").exists() or not any((tmp_path / "fw").iterdir())


def test_promote_unfinished_or_unknown_job(console: Any, tmp_path: Path) -> None:
    from sortcam.console.retrain import Job

    console.jobs.jobs["run1"] = Job("run1", "scratch", tmp_path, time.time(), subprocess.Popen(["sleep", "30"]))
    try:
        c = console.app.test_client()
        assert "only a finished retrain" in c.post("/api/retrain/run1/promote", headers=auth()).get_json()["error"]
        assert "no retrain job" in c.post("/api/retrain/zzz/promote", headers=auth()).get_json()["error"]
    finally:
        console.jobs.jobs["run1"].proc.kill()
        console.jobs.jobs["run1"].proc.wait()


def test_promote_fails_cleanly_when_export_fails(
    console: Any, tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sortcam.console import modelops
    from sortcam.errors import ModelError

    def broken(*a: Any, **k: Any) -> None:
        raise ModelError("exporter exploded")

    monkeypatch.setattr(modelops, "export_c_sources", broken)
    job = fake_finished_job(console, tmp_path)
    before = snapshot(model_dir)
    r = console.app.test_client().post(f"/api/retrain/{job}/promote", headers=auth())
    assert r.status_code == 400 and "exporter exploded" in r.get_json()["error"]
    assert snapshot(model_dir) == before
    assert [p.name for p in model_dir.iterdir() if p.name.startswith(".")] == []
    assert [p.name for p in (tmp_path / "fw").iterdir()] == []


def test_promote_writes_model_card_and_sources(
    console: Any, tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sortcam.card import load_card, sha256_file
    from sortcam.console import modelops

    monkeypatch.setattr(modelops, "export_c_sources", fake_exporter)
    old_id = load_card(model_dir / "line.json").model_id
    job = fake_finished_job(console, tmp_path)
    r = console.app.test_client().post(f"/api/retrain/{job}/promote", headers=auth())
    assert r.status_code == 200, r.get_json()
    card = load_card(model_dir / "line.json")
    assert card.tflite == "line.tflite" and card.sha256 == sha256_file(model_dir / "line.tflite")
    assert card.bins == console.bins and "promoted" in card.extra
    assert sorted(p.name for p in (tmp_path / "fw").iterdir()) == ["model_data.cc", "model_settings.h"]
    assert (model_dir / "history" / old_id / "line.json").is_file()
    assert [p.name for p in model_dir.iterdir() if p.name.startswith(".")] == []
    assert console.classifier.card.sha256 == card.sha256


def test_interrupted_promotion_rolls_forward(tmp_path: Path, model_dir: Path) -> None:
    from sortcam.console.retrain import JOURNAL, recover

    stage = model_dir / ".promote-x"
    stage.mkdir()
    (stage / "line.tflite").write_bytes(b"new model")
    (model_dir / JOURNAL).write_text(
        json.dumps(
            {
                "moves": [
                    [str(stage / "line.tflite"), str(model_dir / "line.tflite")],
                    [str(stage / "line.json"), str(model_dir / "line.json")],
                ],
                "cleanup": [str(stage)],
            }
        )
    )
    assert recover(model_dir)
    assert (model_dir / "line.tflite").read_bytes() == b"new model"
    assert not stage.exists() and not (model_dir / JOURNAL).exists()
    assert not recover(model_dir)


def test_console_cli_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    from sortcam.cli import main

    assert main(["console", "--port", "70000", "--broker", "none"]) == 2
    assert "--port 70000" in capsys.readouterr().err
    assert main(["console", "--bins", "/nonexistent.json", "--broker", "none", "--port", "0"]) == 1
    assert "cannot read bin map" in capsys.readouterr().err


def test_promote_with_the_real_exporter(console: Any, tmp_path: Path, model_dir: Path) -> None:
    """The pipeline's ``sortcam export`` writes the firmware sources of the promoted model."""
    pytest.importorskip("sortcam.tools.export")
    from sortcam.card import load_card

    job = fake_finished_job(console, tmp_path)
    r = console.app.test_client().post(f"/api/retrain/{job}/promote", headers=auth())
    assert r.status_code == 200, r.get_json()
    names = sorted(p.name for p in (tmp_path / "fw").iterdir())
    assert names == ["model_data.cc", "model_data.h", "model_ops.h", "model_settings.h"]
    settings = (tmp_path / "fw" / "model_settings.h").read_text()
    assert "Generated by sortcam export" in settings and load_card(model_dir / "line.json").sha256 in settings


def test_training_progress_from_the_worker_log() -> None:
    from sortcam.console.retrain import _training_percent

    assert _training_percent(["== training (10%)"], 10) == 10
    assert _training_percent(["[scratch] epoch 2/4 loss 1.0", "noise"], 10) == 42
    assert _training_percent(["[fine-tune] epoch 4/4 loss 1.0"], 10) == 75
