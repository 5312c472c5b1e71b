"""Faults around the controller: broker restart, USB unplug, controller restart and kill."""

from __future__ import annotations

import signal
import threading
import time

from host_helpers import Mqtt, ScriptedSorter, classification, wait_until


def _publish_stream(client: Mqtt, n: int, start: int = 0, gap_s: float = 0.02, device: str = "cam1") -> None:
    for seq in range(start, start + n):
        client.publish(f"sortcam/{device}/classification", classification(device=device, seq=seq, label="metal"))
        time.sleep(gap_s)


def _all_acked_once(rig, n: int) -> None:  # noqa: ANN001
    rows = rig.controller.events()
    assert len(rows) == n, rows
    assert {r["status"] for r in rows} == {"acked"}
    ids = {r["sort_id"] for r in rows}
    assert len(ids) == n
    # the sorter moved exactly these ids, each once
    assert set(rig.sorter.moves) == ids


def test_broker_restart_mid_stream_loses_nothing(rig_factory, mqtt_broker) -> None:  # noqa: ANN001
    rig = rig_factory(items={"deadline_ms": 20000})
    # a device with a persistent session: its QoS 1 publishes survive the broker going away
    device = Mqtt(mqtt_broker.url, client_id="cam1-dev", topics=(), persistent=True)
    recorder = Mqtt(mqtt_broker.url, client_id="decision-recorder", persistent=True)
    try:
        n = 60
        publisher = threading.Thread(target=_publish_stream, args=(device, n), kwargs={"gap_s": 0.03})
        publisher.start()
        wait_until(lambda: len(rig.sorter.moves) >= 15, what="15 items sorted before the restart")
        mqtt_broker.stop()
        time.sleep(0.3)
        mqtt_broker.start()
        publisher.join(30)
        wait_until(
            lambda: len(rig.controller.events("--status", "acked")) == n,
            timeout_s=40,
            what=f"{n} acked items after the broker restart",
        )
        _all_acked_once(rig, n)
        assert "lost the broker" in rig.controller.log()
        wait_until(lambda: len(recorder.final()) == n, timeout_s=20, what="every final decision published")
    finally:
        device.close()
        recorder.close()


def test_serial_unplug_and_replug_resumes(rig_factory) -> None:  # noqa: ANN001
    silent = threading.Event()
    rig = rig_factory(
        behaviour=lambda item_id, nth: "silent" if silent.is_set() else "ack",
        serial={"retries": 100},
        items={"deadline_ms": 15000},
    )
    for seq in range(5):
        rig.publish(classification(seq=seq))
    wait_until(lambda: len(rig.controller.events("--status", "acked")) == 5, what="5 acked before unplug")
    silent.set()  # the next SORTs reach the sorter but their ACKs never come back: in flight at the unplug
    for seq in range(5, 8):
        rig.publish(classification(seq=seq))
    wait_until(lambda: len(rig.sorter.copies) == 8, what="3 SORTs in flight")
    old = rig.sorter
    old.stop()
    rig.pty.unplug()
    wait_until(lambda: "lost" in rig.controller.log(), what="the controller noticing the unplug")
    for seq in range(8, 12):  # items keep coming while the sorter is gone
        rig.publish(classification(seq=seq))
    wait_until(lambda: len(rig.controller.events()) == 12, what="12 items recorded")
    time.sleep(0.5)  # the port stays away for a while: reopen attempts fail meanwhile
    rig.pty.replug()
    rig.sorter = ScriptedSorter(rig.pty.master, memory_of=old)
    wait_until(lambda: len(rig.controller.events("--status", "acked")) == 12, what="12 acked after replug")
    _all_acked_once(rig, 12)
    log = rig.controller.log()
    assert "3 in flight go back to the queue" in log and "is back" in log
    kinds = [e["kind"] for e in rig.controller.events("--system")]
    assert "serial_down" in kinds and "serial_up" in kinds
    assert rig.controller.stop() == 0


def test_controller_restart_gets_items_published_while_down(rig_factory) -> None:  # noqa: ANN001
    rig = rig_factory()
    rig.publish(classification(seq=0))
    wait_until(lambda: len(rig.controller.events("--status", "acked")) == 1, what="first item acked")
    assert rig.controller.stop() == 0
    for seq in range(1, 11):
        rig.publish(classification(seq=seq))
    rig.publish(classification(seq=0))  # a device resend of an item already sorted
    rig.controller.start()
    wait_until(lambda: len(rig.controller.events("--status", "acked")) == 11, what="11 acked after restart")
    _all_acked_once(rig, 11)
    rows = rig.controller.events()
    assert rows[0]["duplicates"] == 1
    assert [r["seq"] for r in rows] == list(range(11))


def test_killed_controller_resends_unacked_with_the_same_id(rig_factory) -> None:  # noqa: ANN001
    answering = threading.Event()
    rig = rig_factory(
        behaviour=lambda item_id, nth: "ack" if answering.is_set() else "silent",
        serial={"retries": 100, "ack_timeout_ms": 300},
        items={"deadline_ms": 20000},
    )
    for seq in range(3):
        rig.publish(classification(seq=seq, label="glass"))
    wait_until(lambda: len(rig.sorter.copies) == 3, what="3 SORTs written")
    ids_before = set(rig.sorter.copies)
    rig.controller.stop(signal.SIGKILL)
    answering.set()
    rig.controller.start()
    wait_until(lambda: len(rig.controller.events("--status", "acked")) == 3, what="3 acked after the kill")
    assert set(rig.sorter.copies) == ids_before  # re-sent, never renumbered
    assert set(rig.sorter.moves) == ids_before
    assert "recovered 3 un-acknowledged" in rig.controller.log()
    for seq in range(3):  # the broker redelivers nothing new, a device resend is a duplicate
        rig.publish(classification(seq=seq, label="glass"))
    wait_until(lambda: rig.controller.log().count("duplicate") >= 3, what="3 duplicates")
    assert set(rig.sorter.copies) == ids_before
    assert rig.controller.stop() == 0


def test_sigterm_with_items_in_flight_records_them(rig_factory) -> None:  # noqa: ANN001
    rig = rig_factory(behaviour=lambda item_id, nth: "silent", serial={"retries": 100}, items={"deadline_ms": 60000})
    rig.publish(classification(seq=0))
    wait_until(lambda: rig.sorter.copies, what="a SORT written")
    assert rig.controller.stop(signal.SIGTERM) == 0
    log = rig.controller.log()
    assert "not acknowledged yet" in log and "controller stopped" in log
    assert [r["status"] for r in rig.controller.events()] == ["sent"]


def test_device_status_online_offline_and_stale(rig_factory) -> None:  # noqa: ANN001
    rig = rig_factory(mqtt={"stale_after_s": 0.5})
    online = (
        b'{"v":1,"device":"cam1","state":"online","fw":"1.0","model":"0123456789ab","uptime_s":3,'
        b'"free_heap":100000,"rssi":-60,"fps":2.0}'
    )
    rig.mqtt.publish("sortcam/cam1/status", online, retain=True).wait_for_publish(5)
    wait_until(
        lambda: any(e["detail"] == "cam1 stale" for e in rig.controller.events("--system")), what="cam1 going stale"
    )
    rig.mqtt.publish("sortcam/cam1/status", b'{"v":1,"device":"cam1","state":"offline"}', retain=True)
    details = wait_until(
        lambda: [
            e["detail"]
            for e in rig.controller.events("--system")
            if e["kind"] == "device" and e["detail"] == "cam1 offline"
        ],
        what="cam1 offline",
    )
    assert details
    seq_details = [e["detail"] for e in rig.controller.events("--system") if e["kind"] == "device"]
    assert seq_details[:3] == ["cam1 online", "cam1 stale", "cam1 offline"]


def test_shared_subscription_splits_the_load(mqtt_broker, pty_pair, tmp_path) -> None:  # noqa: ANN001
    from host_helpers import ControllerProcess, write_config

    second_pty = type(pty_pair)(tmp_path, "ttySORT2")
    cfg = write_config(tmp_path / "host.json")
    sorters = [ScriptedSorter(pty_pair.master), ScriptedSorter(second_pty.master)]
    dirs = [tmp_path / "a", tmp_path / "b"]
    controllers = []
    try:
        for n, (d, path) in enumerate(zip(dirs, [pty_pair.path, second_pty.path], strict=True)):
            d.mkdir()
            controllers.append(
                ControllerProcess(
                    d, mqtt_broker.url, str(path), cfg, extra=("--shared-group", "line1", "--client-id", f"host-{n}")
                ).start()
            )
        client = Mqtt(mqtt_broker.url)
        n_items = 40
        for seq in range(n_items):
            client.publish("sortcam/cam1/classification", classification(seq=seq))
        wait_until(lambda: sum(len(s.moves) for s in sorters) == n_items, what="every item sorted by one of two")
        assert all(s.moves for s in sorters), "one controller got nothing"
        seqs = [r["seq"] for c in controllers for r in c.events()]
        assert sorted(seqs) == list(range(n_items))  # each item decided by exactly one controller
        client.close()
    finally:
        for c in controllers:
            c.kill()
        for s in sorters:
            s.stop()
        second_pty.close()


def test_mqtt_311_only_broker_falls_back(pty_pair, tmp_path) -> None:  # noqa: ANN001
    """amqtt (the simulator's embedded broker) speaks only MQTT 3.1.1: auto mode falls back."""
    import pytest

    broker_mod = pytest.importorskip("sortcam.sim.broker")
    from host_helpers import write_config

    from sortcam.host.config import build_config
    from sortcam.host.controller import Controller

    broker = broker_mod.EmbeddedBroker().start()
    sorter = ScriptedSorter(pty_pair.master)
    cfg = build_config(
        broker=broker.url,
        serial_url=str(pty_pair.path),
        line="amqtt",
        config_file=write_config(tmp_path / "c.json"),
        overrides={"state_db": tmp_path / "h.db"},
    )
    ctl = Controller(cfg, drain_s=0.5)
    try:
        ctl.start()
        assert ctl.wait_ready(10) and ctl.mqtt_version == "3.1.1"
        client = Mqtt(broker.url)
        client.publish("sortcam/cam1/classification", classification(seq=3, label="trash"))
        wait_until(lambda: ctl.metrics.get("acked_total") == 1, what="the item acked through amqtt")
        assert list(sorter.moves.values()) == [5]
        client.close()
    finally:
        ctl.stop()
        sorter.stop()
        broker.stop()


def test_socket_url_sorter_drops_and_returns(mqtt_broker, tmp_path) -> None:  # noqa: ANN001
    """--serial takes pyserial URLs: a sorter behind socket:// (a serial-over-TCP bridge) that
    goes away and comes back on the same port."""
    import socket

    from host_helpers import ControllerProcess, write_config

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    class Bridge:
        def __init__(self, memory_of: ScriptedSorter | None = None) -> None:
            self.server = socket.create_server(("127.0.0.1", port), reuse_port=False)
            self.server.settimeout(20)
            self.memory_of = memory_of
            self.sorter: ScriptedSorter | None = None
            self.conn: socket.socket | None = None
            self.thread = threading.Thread(target=self._accept, daemon=True)
            self.thread.start()

        def _accept(self) -> None:
            conn, _ = self.server.accept()
            self.conn = conn
            self.sorter = ScriptedSorter(conn.fileno(), memory_of=self.memory_of)

        def close(self) -> None:
            if self.sorter:
                self.sorter.stop()
            for s in (self.conn, self.server):
                if s is not None:
                    s.close()

    bridge = Bridge()
    cfg = write_config(tmp_path / "c.json", items={"deadline_ms": 15000})
    ctl = ControllerProcess(tmp_path, mqtt_broker.url, f"socket://127.0.0.1:{port}", cfg)
    client = Mqtt(mqtt_broker.url)
    try:
        ctl.start()
        for seq in range(3):
            client.publish("sortcam/cam1/classification", classification(seq=seq))
        wait_until(lambda: bridge.sorter and len(bridge.sorter.moves) == 3, what="3 items over socket://")
        old = bridge.sorter
        bridge.close()
        wait_until(lambda: "lost" in ctl.log(), what="the controller noticing the bridge going away")
        for seq in range(3, 6):
            client.publish("sortcam/cam1/classification", classification(seq=seq))
        wait_until(lambda: len(ctl.events()) == 6, what="6 items recorded")
        bridge = Bridge(memory_of=old)
        wait_until(lambda: len(ctl.events("--status", "acked")) == 6, what="6 acked after the bridge returned")
        assert len(old.moves) == 6 and len({r["sort_id"] for r in ctl.events()}) == 6
        assert ctl.stop() == 0
    finally:
        ctl.kill()
        bridge.close()
        client.close()
