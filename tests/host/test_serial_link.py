"""SorterLink on a real pty: a submitted SORT is written in the submitter's own thread when
the worker is free, bursts keep their order when one has to queue, and the worker still
times the ACKs of SORTs it did not write itself."""

from __future__ import annotations

import os
import select
import threading
import time
from typing import Any

from sortcam import serial_contract as sc
from sortcam.host.metrics import Metrics
from sortcam.host.serial_link import SUBMIT_WAIT_S, SorterLink, SortJob


def _job(sort_id: int) -> SortJob:
    now = time.monotonic()
    return SortJob(
        sort_id=sort_id,
        gate=1,
        belt_delay_ms=0,
        device_latency_ms=0.0,
        received_mono=now,
        received_ts=time.time(),
        deadline_mono=now + 30.0,
    )


def _read_lines(fd: int, want: int, timeout: float = 5.0) -> list[bytes]:
    buf = b""
    end = time.monotonic() + timeout
    while buf.count(b"\n") < want and time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            buf += os.read(fd, 4096)
    return [line for line in buf.split(b"\n") if line]


def _sort_ids(lines: list[bytes]) -> list[int]:
    out = []
    for raw in lines:
        msg = sc.parse(sc.decode(raw))
        if msg.verb == "SORT":
            out.append(msg.item_id)
    return out


def _link(pty_pair: Any, done: list[Any], **kw: Any) -> SorterLink:
    return SorterLink(
        str(pty_pair.path),
        on_done=done.extend,
        on_event=lambda k, d: None,
        metrics=Metrics(),
        ping_interval_s=3600.0,
        **kw,
    )


def test_submit_writes_the_sort_before_it_returns(pty_pair) -> None:  # noqa: ANN001
    done: list[Any] = []
    link = _link(pty_pair, done, window=8)
    link.start()
    try:
        _read_lines(pty_pair.master, 1)  # the PING of the opening
        time.sleep(0.1)  # the worker is waiting on its inbox
        job = _job(7)
        link.submit_many([job])
        assert job.first_write_mono is not None, "the SORT was left for the worker"
        assert _sort_ids(_read_lines(pty_pair.master, 1)) == [7]
    finally:
        link.stop(0.5)


def test_a_queued_burst_keeps_its_place(pty_pair) -> None:  # noqa: ANN001
    """A burst queued for the worker (the state was busy past SUBMIT_WAIT_S) is not overtaken:
    while the worker has taken it from its inbox but not yet acted on it, a second burst that
    finds the state free must queue behind it instead of writing directly."""
    done: list[Any] = []
    link = _link(pty_pair, done, window=8)
    link.start()
    try:
        _read_lines(pty_pair.master, 1)
        took_jobs, go_on = threading.Event(), threading.Event()
        original_get = link._inbox.get

        def gated_get(*args: Any, **kwargs: Any) -> Any:
            item = original_get(*args, **kwargs)
            if item[0] == "jobs" and not go_on.is_set():
                took_jobs.set()
                go_on.wait(5.0)  # taken from the inbox, not yet acted on; the state is free
            return item

        link._inbox.get = gated_get  # type: ignore[method-assign]
        link._inbox.put(("wake", None))  # the worker's wait in progress ends; its next one is gated
        time.sleep(0.1)
        with link._state:  # busy past SUBMIT_WAIT_S: the first burst is queued
            t0 = time.monotonic()
            first = [_job(1), _job(2)]
            link.submit_many(first)
            assert time.monotonic() - t0 >= SUBMIT_WAIT_S * 0.9
            assert all(j.first_write_mono is None for j in first)
        assert took_jobs.wait(5.0)
        second = _job(3)
        link.submit_many([second])
        assert second.first_write_mono is None, "the second burst overtook the queued one"
        go_on.set()
        assert _sort_ids(_read_lines(pty_pair.master, 3)) == [1, 2, 3]
    finally:
        link.stop(0.5)


def test_a_job_past_its_deadline_is_missed_not_written(pty_pair) -> None:  # noqa: ANN001
    done: list[Any] = []
    link = _link(pty_pair, done, window=8)
    link.start()
    try:
        _read_lines(pty_pair.master, 1)
        late = _job(4)
        late.deadline_mono = time.monotonic() - 1.0
        link.submit_many([late, _job(5)])
        assert _sort_ids(_read_lines(pty_pair.master, 1)) == [5]
        end = time.monotonic() + 3.0
        while not done and time.monotonic() < end:
            time.sleep(0.02)
        assert [(j.sort_id, status, why) for j, status, why in done] == [(4, "missed", "deadline")]
        assert late.first_write_mono is None and late.attempts == 0
    finally:
        link.stop(0.5)


def test_the_worker_retries_a_sort_written_by_the_submitter(pty_pair) -> None:  # noqa: ANN001
    """No ACK: the worker, woken by the submitter, writes the same line again after the ACK
    timeout, and reports it missed after the retries; then an ACK for a new one is seen."""
    done: list[Any] = []
    link = _link(pty_pair, done, window=8, ack_timeout_ms=100, retries=1)
    link.start()
    try:
        _read_lines(pty_pair.master, 1)
        time.sleep(0.1)
        link.submit_many([_job(5)])
        lines = _read_lines(pty_pair.master, 2, timeout=3.0)
        assert _sort_ids(lines) == [5, 5], lines
        end = time.monotonic() + 3.0
        while not done and time.monotonic() < end:
            time.sleep(0.02)
        assert [(j.sort_id, status) for j, status, _ in done] == [(5, "missed")]
        link.submit_many([_job(6)])
        assert _sort_ids(_read_lines(pty_pair.master, 1)) == [6]
        os.write(pty_pair.master, sc.ack_line(6))
        end = time.monotonic() + 3.0
        while len(done) < 2 and time.monotonic() < end:
            time.sleep(0.02)
        assert [(j.sort_id, status) for j, status, _ in done] == [(5, "missed"), (6, "acked")]
    finally:
        link.stop(0.5)
