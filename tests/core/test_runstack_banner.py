"""`make run` prints one banner last, once everything is up: the console URL, the login, the API key and
the portal link, after the web server answers and a worker has run beat's heartbeat since this start, so
it is not buried under install, migrate and worker output."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from core.management.commands.runstack import banner, stack_ready
from tests.core.test_runstack_signals import ROOT, data_dir, free_port, stack_environ  # noqa: F401

SINCE = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def report(*, db="ok", broker="ok", beat="ok", last_run=SINCE + timedelta(seconds=3)) -> dict:
    return {
        "database": {"status": db},
        "broker": {"status": broker},
        "beat": {"status": beat, "lastRunAt": last_run.isoformat() if last_run else None},
    }


def test_the_stack_is_up_only_with_a_heartbeat_run_since_this_start():
    assert stack_ready(report(), since=SINCE)
    assert not stack_ready({}, since=SINCE)  # the web server is not answering yet
    assert not stack_ready(report(last_run=SINCE - timedelta(seconds=1)), since=SINCE)  # a previous run's
    assert not stack_ready(report(beat="pending", last_run=None), since=SINCE)
    assert not stack_ready(report(db="fail"), since=SINCE)
    assert not stack_ready(report(broker="fail"), since=SINCE)


def test_the_banner_frames_every_line_and_says_what_runs():
    text = banner(
        lines=["Console:  http://h:1/console/   login: a / b", "API key:  k"], jobs_up=True, broker="sql"
    )
    rows = text.strip().splitlines()
    assert rows[0] == rows[-1] == "=" * max(len(r) for r in rows[1:-1])
    assert rows[1] == "Meterline is up: web, worker and beat are running (broker: sql)."
    assert rows[2:4] == ["Console:  http://h:1/console/   login: a / b", "API key:  k"]
    assert rows[-2] == "Ctrl-C stops everything."
    late = banner(lines=["x"], jobs_up=False, broker="redis")
    assert "background jobs have not answered yet (see /healthz)" in late


def read_lines(stream, out: queue.Queue) -> None:
    for line in stream:
        out.put(line.rstrip("\n"))
    out.put(None)


@pytest.mark.processes
def test_make_run_prints_the_banner_last_once_everything_is_up(data_dir):  # noqa: F811
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runstack", "--port", str(port)],
        cwd=ROOT,
        env=stack_environ(data_dir, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=read_lines, args=(proc.stdout, lines), daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 180
        while not any(line.startswith("Meterline is up:") for line in seen):
            assert time.monotonic() < deadline, "\n".join(seen[-40:])
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "runstack exited:\n" + "\n".join(seen[-40:])
            seen.append(line)
        while True:  # the rest of the banner, then nothing for a few seconds
            try:
                line = lines.get(timeout=4)
            except queue.Empty:
                break
            assert line is not None
            seen.append(line)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    start = max(i for i, line in enumerate(seen) if line.startswith("Meterline is up:"))
    block = [line for line in seen[start - 1 :] if line.strip()]
    assert block[0] == block[-1] and set(block[0]) == {"="}, "the banner is the last output:\n" + "\n".join(
        seen[-30:]
    )
    assert block[1].startswith("Meterline is up: web, worker and beat are running")
    text = "\n".join(block)
    base = f"http://127.0.0.1:{port}"
    assert f"Console:  {base}/console/   login: demo / demo-password" in text
    assert "API key:  ml_demo_" in text
    assert f"Portal:   {base}/portal/mlp_" in text
    assert block[-2] == "Ctrl-C stops everything."
