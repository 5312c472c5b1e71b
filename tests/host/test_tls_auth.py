"""mqtts://, a CA file and username/password against a real mosquitto with TLS and a password file."""

from __future__ import annotations

import os
import ssl
import subprocess
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from host_helpers import ControllerProcess, ScriptedSorter, classification, wait_until, write_config
from paho.mqtt.enums import CallbackAPIVersion


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _make_certs(d: Path, name: str) -> tuple[Path, Path, Path]:
    ca_key, ca = d / f"{name}-ca.key", d / f"{name}-ca.pem"
    key, csr, cert = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem"
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "2",
        "-subj",
        f"/CN={name} test CA",
    )
    _openssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        "/CN=127.0.0.1",
    )
    ext = d / f"{name}.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "2",
        "-extfile",
        str(ext),
    )
    return ca, cert, key


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ...]:
    """A CA and a server certificate for 127.0.0.1, a second unrelated CA, a password file."""
    if not Path("/usr/bin/openssl").exists() or not Path("/usr/bin/mosquitto_passwd").exists():
        pytest.skip("needs openssl and mosquitto_passwd")
    d = tmp_path_factory.mktemp("tls")
    ca, cert, key = _make_certs(d, "broker")
    other_ca, _, _ = _make_certs(d, "other")
    passwd = d / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "line", "s3cret"], check=True, capture_output=True)
    for f in (passwd, key, cert, ca):
        os.chmod(f, 0o644)
    return ca, cert, key, other_ca, passwd


@pytest.fixture()
def tls_broker(tls_files, mqtt_broker):  # noqa: ANN001, ANN201
    ca, cert, key, other_ca, passwd = tls_files
    mqtt_broker.stop()
    text = mqtt_broker.conf.read_text().replace("allow_anonymous true\n", "")
    mqtt_broker.conf.write_text(
        text + f"allow_anonymous false\npassword_file {passwd}\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
    )
    mqtt_broker.start()
    return mqtt_broker, ca, other_ca


def _tls_client(port: int, ca: Path) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="tls-test-pub")
    client.tls_set(ca_certs=str(ca), cert_reqs=ssl.CERT_REQUIRED)
    client.username_pw_set("line", "s3cret")
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def test_mqtts_with_ca_and_password_from_env(
    tls_broker,
    pty_pair,
    tmp_path: Path,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker, ca, _ = tls_broker
    sorter = ScriptedSorter(pty_pair.master)
    monkeypatch.setenv("SORTCAM_MQTT_USERNAME", "line")
    monkeypatch.setenv("SORTCAM_MQTT_PASSWORD", "s3cret")
    ctl = ControllerProcess(
        tmp_path,
        f"mqtts://127.0.0.1:{broker.port}",
        str(pty_pair.path),
        write_config(tmp_path / "c.json"),
        extra=("--ca-file", str(ca)),
    )
    try:
        ctl.start()
        client = _tls_client(broker.port, ca)
        client.publish("sortcam/cam1/classification", classification(seq=1, label="glass"), qos=1)
        wait_until(lambda: sorter.moves, what="the item sorted over TLS")
        assert list(sorter.moves.values()) == [4]
        client.loop_stop()
        client.disconnect()
        assert ctl.stop() == 0
    finally:
        ctl.kill()
        sorter.stop()


@pytest.mark.parametrize("case", ["bad_password", "wrong_ca"])
def test_tls_and_auth_failures_are_one_line_errors(tls_broker, pty_pair, tmp_path: Path, case: str) -> None:  # noqa: ANN001
    broker, ca, other_ca = tls_broker
    args = [
        "--username",
        "line",
        "--password",
        "wrong" if case == "bad_password" else "s3cret",
        "--ca-file",
        str(other_ca if case == "wrong_ca" else ca),
    ]
    ctl = ControllerProcess(
        tmp_path,
        f"mqtts://127.0.0.1:{broker.port}",
        str(pty_pair.path),
        write_config(tmp_path / "c.json"),
        extra=tuple(args),
    )
    ctl.start(wait_ready=False)
    try:
        rc = ctl.proc.wait(30)
    finally:
        ctl.kill()
    log = ctl.log()
    errors = [line for line in log.splitlines() if line.startswith("sortcam: error: ")]
    assert rc == 1 and len(errors) == 1, log
    assert "Traceback" not in log
    expect = "refused the connection" if case == "bad_password" else "cannot reach MQTT broker"
    assert expect in errors[0]


def test_password_file_and_the_twin_honours_the_ca_file(
    tls_broker,
    pty_pair,
    tmp_path: Path,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Neither the controller nor the twin needs the password on its command line, and both
    verify the broker against the CA file they are given (sortcam.mqtt_link)."""
    from sortcam.errors import BrokerError
    from sortcam.sim.twin import DeviceTwin

    broker, ca, other_ca = tls_broker
    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("SORTCAM_MQTT_USERNAME", "line")
    monkeypatch.delenv("SORTCAM_MQTT_PASSWORD", raising=False)
    monkeypatch.setenv("SORTCAM_MQTT_PASSWORD_FILE", str(secret))
    url = f"mqtts://127.0.0.1:{broker.port}"
    twin = DeviceTwin("cam1")
    with pytest.raises(BrokerError):
        twin.connect(url, ca_file=str(other_ca), timeout_s=5)
    sorter = ScriptedSorter(pty_pair.master)
    monkeypatch.delenv("SORTCAM_MQTT_PASSWORD_FILE")
    ctl = ControllerProcess(
        tmp_path,
        url,
        str(pty_pair.path),
        write_config(tmp_path / "c.json"),
        extra=("--ca-file", str(ca), "--password-file", str(secret)),
    )
    try:
        ctl.start()
        monkeypatch.setenv("SORTCAM_MQTT_PASSWORD_FILE", str(secret))
        twin.connect(url, ca_file=str(ca))
        assert twin.link.up
        twin.link.publish("sortcam/cam1/classification", classification(seq=1, label="glass"), retain=False)
        wait_until(lambda: sorter.moves, what="the twin's item sorted over TLS")
        assert list(sorter.moves.values()) == [4]
        twin.close()
        assert ctl.stop() == 0
    finally:
        ctl.kill()
        sorter.stop()
