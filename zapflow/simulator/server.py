"""Serve a `SimulatedCloud` over real HTTP on loopback (uvicorn), the handler unchanged.

The ASGI adapter turns each HTTP request into the `httpx.Request` the in-process transport would
have built, so in-process tests and over-the-wire runs exercise the same routes. A write whose
response a fault withholds is answered only after `hold_s`, past the client's read timeout.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import httpx
import uvicorn

from zapflow.simulator.cloud import SimulatedCloud, WriteTimedOut

__all__ = ["SimulatorServer", "asgi_app", "port_is_free"]

_STARTUP_TIMEOUT_S = 30.0


def asgi_app(cloud: SimulatedCloud) -> Any:  # noqa: ANN401 - an ASGI callable
    """An ASGI application answering every request with `cloud.handle`."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:  # noqa: ANN401
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        host, port = scope.get("server") or ("127.0.0.1", 80)
        url = httpx.URL(
            scheme=scope.get("scheme", "http"),
            host=host,
            port=port,
            path=scope["path"],
            query=scope.get("query_string", b""),
        )
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        request = httpx.Request(scope["method"], url, headers=headers, content=body)
        try:
            response = await asyncio.to_thread(cloud.handle, request)
        except WriteTimedOut as exc:
            await asyncio.sleep(exc.hold_s)  # the write landed; its answer comes too late
            response = httpx.Response(200)
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [
                    (k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.multi_items()
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.content})

    return app


def port_is_free(host: str, port: int) -> bool:
    """True when `host:port` can be bound now (a clear error beats uvicorn's exit on EADDRINUSE)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class SimulatorServer:
    """Runs the simulated cloud on `host:port` in a background thread (port 0 picks a free one)."""

    def __init__(self, cloud: SimulatedCloud, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.cloud = cloud
        config = uvicorn.Config(
            asgi_app(cloud), host=host, port=port, log_level="warning", lifespan="off", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self.host = host
        self.port = port

    @property
    def base_url(self) -> str:
        """`http://host:port` once started."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        """Start serving; returns the base URL once the socket accepts connections."""
        self._thread = threading.Thread(target=self._server.run, name="zapflow-simulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                msg = f"simulator did not start on {self.host}:{self.port}"
                raise RuntimeError(msg)
            time.sleep(0.01)  # waiting for uvicorn's own start-up flag
        sockets = [s for server in self._server.servers for s in server.sockets]
        self.port = sockets[0].getsockname()[1]
        return self.base_url

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=_STARTUP_TIMEOUT_S)

    def serve_until_signalled(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Serve until SIGINT or SIGTERM, then shut down cleanly (exit status stays 0).

        uvicorn's own handlers re-raise the signal after shutdown, which a supervisor reads as a
        crash; here the server runs in its thread and the main thread owns the signals.
        """
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            url = self.start()
            if on_ready is not None:
                on_ready(url)
            stop.wait()
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
