"""`zapflow simulator serve` as a user runs it: a real process that serves and shuts down cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_answers_and_stops_on_sigterm() -> None:
    """The served simulator logs a client in over HTTP and exits 0 on SIGTERM."""
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "zapflow", "simulator", "serve", "--port", str(port), "--scale", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # start-up imports pvlib/pandas; bounded, never asserted on
        while True:
            try:
                state = httpx.get(f"{base_url}/_sim/state", timeout=2).json()
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "simulator did not come up"
                time.sleep(0.2)  # polling a child process, not waiting on simulated time
        assert state["scenario"] == "sunny-day"
        token = httpx.post(
            f"{base_url}/oauth/token",
            data={"grant_type": "password", "username": "demo@zapflow.local", "password": "zapflow-demo"},
        )
        assert token.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    assert "Traceback" not in output
    assert f"ZAPFLOW_ZAPTEC_BASE_URL={base_url}" in output
