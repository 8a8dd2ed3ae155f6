"""A stand-in for the backend's /internal API: records the scheduler's and reconciler's
posts (path, X-Result-Token, body) and answers `answer`."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from runner_image.contract import RESULT_TOKEN_HEADER


@dataclass
class FakeInternalApi:
    answer: tuple[int, dict[str, Any]] = (200, {"stored": True})
    posts: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                backend.posts.append(
                    {"path": self.path, "token": self.headers[RESULT_TOKEN_HEADER], "body": body}
                )
                status, answer = backend.answer
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/internal"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
