"""A real S3 server on loopback for tests: moto's server (``moto[server]``) in a child process on a free port.

moto checks a PUT's ``If-Match``/``If-None-Match`` and then writes, in two steps with no lock between them; S3 does
both as one atomic step. So that two racing conditional writes behave as on S3 (one wins, the other gets 412),
this server hands moto one request at a time. Everything else is moto's server as it is: real HTTP, real
``Date`` headers, real ETags.

``python -m octoqueue.testing.s3_server`` prints ``PORT <n>`` once it listens, then serves until killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

#: Credentials for the loopback server (moto accepts any); real ones are never needed or read.
TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "octoqueue-test", "AWS_SECRET_ACCESS_KEY": "octoqueue-test"}
REGION = "us-east-1"


def _serialised(app: Callable[..., Iterable[bytes]]) -> Callable[..., list[bytes]]:
    lock = threading.Lock()

    def handle(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with lock:
            return list(app(environ, start_response))

    return handle


def serve() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    app = _serialised(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    print(f"PORT {server.server_port}", flush=True)
    server.serve_forever()


class LoopbackS3:
    """Start the server as a child process; :meth:`close` ends it (that process only)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "octoqueue.testing.s3_server"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **TEST_CREDENTIALS},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.process.kill()
            raise RuntimeError(f"the loopback S3 server did not start (said {line!r})")
        self.port = int(line.split()[1])
        self.endpoint_url = f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        return self.session().client("s3", endpoint_url=self.endpoint_url)

    def session(self) -> Any:
        import boto3

        return boto3.session.Session(
            aws_access_key_id=TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )

    def new_bucket(self) -> str:
        name = f"oq-{uuid.uuid4().hex[:20]}"
        self.client().create_bucket(Bucket=name)
        return name

    def url(self, bucket: str, prefix: str = "") -> str:
        from octoqueue.stores.s3 import s3_url

        return s3_url(bucket, prefix, endpoint_url=self.endpoint_url, region=REGION)

    def close(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


if __name__ == "__main__":
    serve()
