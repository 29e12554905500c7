"""`make airflow` (scripts/airflow_standalone.py): the URL of the chosen port, the login on every
start, and nothing left running after SIGTERM to its process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from dev.local_airflow import PROJECT, free_port

pytestmark = pytest.mark.e2e

START_TIMEOUT_S = 300


def _start(home, port):
    return subprocess.Popen(
        [sys.executable, "scripts/airflow_standalone.py", "--port", str(port), "--home", str(home)],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a group of its own, as `make airflow` in a terminal
    )


def _read_until(process, marker: str) -> str:
    """The output up to the line containing ``marker``; fails if the process exits first."""
    seen = []
    deadline = time.monotonic() + START_TIMEOUT_S
    for line in process.stdout:
        seen.append(line)
        if marker in line:
            # Keep reading, so that a full pipe never blocks its shutdown.
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return "".join(seen)
        assert time.monotonic() < deadline, f"no {marker!r} in time:\n{''.join(seen[-30:])}"
    pytest.fail(f"exited before {marker!r}:\n{''.join(seen[-30:])}")


def test_port_login_on_every_start_and_sigterm_to_the_group_stops_every_process(tmp_path):
    port = free_port()
    for start in (1, 2):  # the second start finds the home of the first
        script = _start(tmp_path, port)
        try:
            out = _read_until(script, "Ctrl-C stops everything")
            assert f"Airflow UI: http://127.0.0.1:{port}  user admin, password " in out
            assert "DISARMED" in out
            # Everything it started, the sandbox and airflow standalone's components included.
            started = psutil.Process(script.pid).children(recursive=True)
            names = " ".join(" ".join(p.cmdline()) for p in started)
            assert "dev.hubspot_sandbox" in names and "standalone" in names, names
            os.killpg(script.pid, signal.SIGTERM)
            script.wait(60)
            gone, alive = psutil.wait_procs(started, timeout=30)
            assert not alive, f"start {start}: left running after SIGTERM: {alive}"
        finally:
            if script.poll() is None:
                os.killpg(script.pid, signal.SIGKILL)
