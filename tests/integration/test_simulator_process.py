"""`zapflow simulator serve` as a user runs it: a real process that serves and shuts down cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

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
    assert process.stdout is not None
    seen = []
    try:
        # The CLI announces readiness once its socket listens; reading blocks until then.
        while not seen or "simulator ready" not in seen[-1]:
            line = process.stdout.readline().decode()
            assert line, "simulator exited before it was ready:\n" + "".join(seen)
            seen.append(line)
        state = httpx.get(f"{base_url}/_sim/state", timeout=10).json()
        assert state["scenario"] == "sunny-day"
        token = httpx.post(
            f"{base_url}/oauth/token",
            data={"grant_type": "password", "username": "demo@zapflow.local", "password": "zapflow-demo"},
        )
        assert token.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        output = "".join(seen) + process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    assert "Traceback" not in output
    assert f"ZAPFLOW_ZAPTEC_BASE_URL={base_url}" in output
