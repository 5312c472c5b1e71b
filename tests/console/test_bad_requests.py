"""Issue 16 against the console: newline boots, repeated keys, sign-in redirects, HTTP
status by error type, and an image too big for Pillow to even measure."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from typing import Any

import pytest
from console_helpers import TOKEN, auth, classification, decision, jpeg
from hypothesis import given
from hypothesis import strategies as st
from near_misses import DIGIT_INTRUDERS, ID_ALPHABET, INTRUDERS, SETTINGS, near_miss, valid_ids

from sortcam import mqtt_contract as mc
from sortcam.errors import BusyError, ContractError, SortcamError, UsageError


def feed_of(con: Any) -> Any:
    from sortcam.console.feed import MqttFeed

    return MqttFeed(con.store, "mqtt://127.0.0.1:1", "sortcam", "line1", con.data_dir)


def put_item(con: Any, seq: int) -> None:
    feed = feed_of(con)
    feed.handle("sortcam/cam1/classification", classification("cam1", "b00t", seq, "paper", 0.3))
    feed.handle(
        "sortcam/line/line1/decision", decision("cam1", "b00t", seq, "paper", "reject", "low_confidence", "acked")
    )
    feed.handle("sortcam/cam1/sample", mc.encode_sample(device="cam1", boot="b00t", seq=seq, jpeg=jpeg()))


# --- the sample path ---------------------------------------------------------------------------


@pytest.mark.parametrize("boot", ["b00t\n", "b00t\r", "b00t\x00", " b00t", "b00t\u0661"])
def test_a_sample_whose_boot_is_a_near_miss_makes_no_folder(console: Any, boot: str) -> None:
    payload = mc.encode(
        {"device": "cam1", "boot": boot, "seq": 1, "width": 64, "height": 48, "jpeg": base64.b64encode(jpeg()).decode()}
    )
    with pytest.raises(ContractError, match="boot id"):
        feed_of(console).handle("sortcam/cam1/sample", payload)
    samples = console.data_dir / "samples"
    assert not samples.exists() or not any(samples.rglob("*")), list(samples.rglob("*"))
    assert console.store.recent() == []


def test_a_sample_with_a_key_twice_is_refused(console: Any) -> None:
    good = mc.encode_sample(device="cam1", boot="b00t", seq=1, jpeg=jpeg())
    twice = good.replace(b'"boot":"b00t"', b'"boot":"evil\\n","boot":"b00t"')
    with pytest.raises(ContractError, match="holds 'boot' twice"):
        feed_of(console).handle("sortcam/cam1/sample", twice)


# --- API bodies ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"device":"cam1","boot":"b00t","seq":3,"label":"glass","label":"paper"}',
        b'{"device":"cam2","device":"cam1","boot":"b00t","seq":3,"label":"paper"}',
        b'{"device":"cam1","boot":"b00t","seq":4,"seq":3,"label":"paper"}',
    ],
)
def test_api_bodies_with_a_key_twice_are_refused(console: Any, body: bytes) -> None:
    put_item(console, 3)
    r = console.app.test_client().post("/api/label", data=body, content_type="application/json", headers=auth())
    assert r.status_code == 400 and "twice" in r.get_json()["error"], r.get_json()
    assert console.labels.counts() == {}


def test_form_fields_given_twice_are_refused(console: Any) -> None:
    put_item(console, 3)
    c = console.app.test_client()
    r = c.post(
        "/queue/label", data={"device": "cam1", "boot": "b00t", "seq": "3", "label": ["glass", "paper"]}, headers=auth()
    )
    assert r.status_code == 400 and "field &#39;label&#39; given twice" in r.get_data(as_text=True)
    assert console.labels.counts() == {}


@pytest.mark.parametrize("seq", ["\u0663", "\u00b2", "\uff13", "3\n", " 3", "99999999999"])
def test_item_seq_must_be_ascii_digits(console: Any, seq: str) -> None:
    put_item(console, 3)
    r = console.app.test_client().post(
        "/api/label", json={"device": "cam1", "boot": "b00t", "seq": seq, "label": "paper"}, headers=auth()
    )
    assert r.status_code == 400 and "named by device, boot and seq" in r.get_json()["error"]
    assert console.labels.counts() == {}


@SETTINGS
@given(field=st.sampled_from(["device", "boot", "seq"]), data=st.data())
def test_console_item_key_refuses_near_misses(field: str, data: st.DataObject) -> None:
    from sortcam.console.app import _item_key

    good = {"device": "cam1", "boot": "b00t0004", "seq": "7"}
    assert _item_key(good) == ("cam1", "b00t0004", 7)
    valid = st.integers(0, 99999).map(str) if field == "seq" else valid_ids
    intruders = DIGIT_INTRUDERS if field == "seq" else INTRUDERS
    bad = data.draw(near_miss(valid, intruders))
    with pytest.raises(SortcamError):
        _item_key({**good, field: bad})


@SETTINGS
@given(text=near_miss(st.text(ID_ALPHABET + ".", min_size=1, max_size=100)))
def test_label_store_refuses_near_miss_file_names(text: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    from sortcam.console.labels import LabelStore

    if text.strip(ID_ALPHABET + ".") == "" and not text.startswith("."):
        return
    root = tmp_path_factory.mktemp("labels")
    src = root / "x.jpg"
    src.write_bytes(b"\xff\xd8\xff\xd9")
    with pytest.raises(SortcamError, match="bad file name"):
        LabelStore(root / "labelled").save(src, "paper", ["paper"], text)


# --- sign-in redirect --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "https://elsewhere.example/phish",
        "http:elsewhere.example",
        "//elsewhere.example/x",
        "/\\elsewhere.example",
        "\\\\elsewhere.example",
        "/\t/elsewhere.example",
        "/\n/elsewhere.example",
        "javascript:alert(1)",
        "elsewhere.example",
        "",
    ],
)
def test_sign_in_never_redirects_off_the_site(console: Any, target: str) -> None:
    r = console.app.test_client().post("/login", query_string={"next": target}, data={"token": TOKEN})
    assert r.status_code == 302 and r.headers["Location"] == "/", r.headers["Location"]


@pytest.mark.parametrize("target", ["/queue", "/retrain?job=1", "/samples/cam1/b00t/1.jpg"])
def test_sign_in_returns_to_a_local_page(console: Any, target: str) -> None:
    r = console.app.test_client().post("/login", query_string={"next": target}, data={"token": TOKEN})
    assert r.status_code == 302 and r.headers["Location"] == target


# --- HTTP status by error type -------------------------------------------------------------------


@pytest.mark.parametrize(
    "error,status",
    [
        (BusyError("the belt is busy"), 409),
        (UsageError("a retrain is already running, or so this text says"), 400),
    ],
)
def test_http_status_comes_from_the_error_type(
    console: Any, monkeypatch: pytest.MonkeyPatch, error: Exception, status: int
) -> None:
    def refuse(mode: str) -> None:
        raise error

    monkeypatch.setattr(console, "start_retrain", refuse)
    r = console.app.test_client().post("/api/retrain", json={"mode": "scratch"}, headers=auth())
    assert r.status_code == status and r.get_json()["error"] == str(error)


# --- images past Pillow's own limit ----------------------------------------------------------------


def header_only_png(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` (its pixel data is missing: nothing gets that far)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize("width,height", [(30000, 30000), (100000, 2000), (8000, 5001)])
def test_a_huge_png_gets_the_pixel_limit_message(console: Any, width: int, height: int) -> None:
    data = header_only_png(width, height)
    r = console.app.test_client().post(
        "/api/classify", data={"photos": [(io.BytesIO(data), "big.png")]}, content_type="multipart/form-data"
    )
    assert r.status_code == 400
    assert r.get_json()["error"] == f"big.png: {width}x{height} pixels is more than the 40 MP limit"
