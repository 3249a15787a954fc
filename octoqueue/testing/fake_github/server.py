"""Serving the app over real HTTP with uvicorn, in a background thread (tests) or the foreground (CLI)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn


def uvicorn_config(app: Any, host: str, port: int, log_level: str) -> uvicorn.Config:
    """uvicorn settings shared by both modes. The app sets ``date`` and ``server`` itself (as GitHub's)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=log_level in ("debug", "trace", "info"),
        lifespan="off",
        date_header=False,
        server_header=False,
        timeout_graceful_shutdown=2,
    )


class BackgroundServer:
    """uvicorn in a daemon thread on an already-bound socket, so ``port=0`` yields a known free port."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        bound_port = self._socket.getsockname()[1]
        shown_host = f"[{host}]" if family == socket.AF_INET6 else host
        self.url = f"http://{shown_host}:{bound_port}"
        self._server = uvicorn.Server(uvicorn_config(app, host, bound_port, log_level))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="fake-github-http", daemon=True
        )

    def start(self, timeout: float = 10.0) -> str:
        """Start serving; returns the base URL once uvicorn accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._socket.close()
                raise RuntimeError("fake GitHub server did not start")
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        """Ask uvicorn to exit, wait for it, and release the socket."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
