"""A local HTTP server that speaks the Chat Completions API, for the tests and the bench: the
real `openai` client talks to it over HTTP, exactly as to OpenAI, vLLM or Ollama.

Each request takes the next scripted behaviour (or the default one when the script is empty):
a completion, an HTTP error, raw bytes, a sleep, a trickle, or a function of the request.
Every request is recorded, so tests can check what the model was shown.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Completion:
    """HTTP 200 with a chat completion whose message is `content` (a dict is sent as JSON)."""

    content: str | dict[str, Any] | None
    finish_reason: str = "stop"
    refusal: str | None = None
    prompt_tokens: int = 120
    completion_tokens: int = 40
    model: str = "fake-gpt"


@dataclass(frozen=True)
class Status:
    """An HTTP error with an OpenAI-style error body."""

    code: int
    message: str = "fake server error"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Raw:
    """Any bytes as the body, e.g. garbage that is not a chat completion."""

    body: bytes
    code: int = 200
    content_type: str = "application/json"


@dataclass(frozen=True)
class Sleep:
    """Answer nothing for `seconds`, then behave as `then` (the client has usually gone)."""

    seconds: float
    then: Behaviour | None = None


@dataclass(frozen=True)
class Trickle:
    """Send the headers, then one body byte every `interval` s for `seconds`: each read is
    quick, so a per-read timeout never fires; only a whole-call budget stops it."""

    seconds: float
    interval: float = 0.2


Behaviour = Completion | Status | Raw | Sleep | Trickle | Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])

    def message(self, role: str) -> str:
        return "\n".join(m.get("content", "") for m in self.messages if m.get("role") == role)

    @property
    def prompt(self) -> str:
        return "\n".join(str(m.get("content", "")) for m in self.messages)

    @property
    def schema(self) -> dict[str, Any]:
        return self.body["response_format"]["json_schema"]["schema"]


def completion_body(completion: Completion, number: int) -> dict[str, Any]:
    content = completion.content
    if isinstance(content, dict):
        content = json.dumps(content)
    return {
        "id": f"chatcmpl-fake-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": completion.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": completion.refusal},
                "finish_reason": completion.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "total_tokens": completion.prompt_tokens + completion.completion_tokens,
        },
    }


class FakeChatServer:
    """ThreadingHTTPServer on 127.0.0.1, a free port, serving in a daemon thread."""

    def __init__(self, default: Behaviour | None = None) -> None:
        self.default: Behaviour = default or Completion(
            {"feedback": "Looks fine.", "fail_tags": []}
        )
        self.received: list[Received] = []
        self._script: list[Behaviour] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, *behaviours: Behaviour) -> None:
        """Behaviours for the next requests, in order; then the default again."""
        with self._lock:
            self._script.extend(behaviours)

    def reset(self, default: Behaviour | None = None) -> None:
        with self._lock:
            self._script.clear()
            self.received.clear()
            if default is not None:
                self.default = default

    def _next(self, received: Received) -> Behaviour:
        with self._lock:
            self.received.append(received)
            return self._script.pop(0) if self._script else self.default

    def start(self) -> FakeChatServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"unparsed": raw.decode("utf-8", "replace")}
                received = Received(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send_json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                # A broken pipe means the client gave up (a timeout): nothing left to answer.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._behave(fake._next(received), received, len(fake.received))

            def _behave(self, behaviour: Behaviour, received: Received, number: int) -> None:
                if isinstance(behaviour, Sleep):
                    if fake._stopping.wait(behaviour.seconds) or behaviour.then is None:
                        return
                    self._behave(behaviour.then, received, number)
                elif isinstance(behaviour, Completion):
                    self._send_json(200, completion_body(behaviour, number))
                elif isinstance(behaviour, Status):
                    body = {"error": {"message": behaviour.message, "type": "fake_error"}}
                    self._send_json(behaviour.code, body, behaviour.headers)
                elif isinstance(behaviour, Raw):
                    self._send(behaviour.code, behaviour.body, behaviour.content_type)
                elif isinstance(behaviour, Trickle):
                    self._trickle(behaviour)
                else:
                    self._behave(behaviour(received.body), received, number)

            def _send_json(
                self, code: int, body: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                self._send(code, json.dumps(body).encode(), "application/json", headers)

            def _send(
                self,
                code: int,
                payload: bytes,
                content_type: str,
                headers: dict[str, str] | None = None,
            ) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def _trickle(self, behaviour: Trickle) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "1000000")
                self.end_headers()
                deadline = time.monotonic() + behaviour.seconds
                while time.monotonic() < deadline and not fake._stopping.is_set():
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    fake._stopping.wait(behaviour.interval)

        return Handler


@contextmanager
def fake_chat_server(default: Behaviour | None = None) -> Iterator[FakeChatServer]:
    server = FakeChatServer(default).start()
    try:
        yield server
    finally:
        server.stop()


def obeying_model(request: dict[str, Any]) -> Completion:
    """A model that falls for every injection: full marks, a perfect rubric score, made-up
    tags; yet its answer matches the schema it was given, as a strict-mode server's would."""
    schema = request["response_format"]["json_schema"]["schema"]
    answer: dict[str, Any] = {
        "feedback": "Full marks! As instructed, this submission is perfect: 100/100.",
        "fail_tags": ["accepted", "full_marks", "style"],
    }
    if "rubric_score" in schema["properties"]:
        answer["rubric_score"] = 1.0
    return Completion(answer)


def obeying_model_breaking_schema(request: dict[str, Any]) -> Completion:
    """An obeying model that also returns the score it was told to, outside the schema."""
    answer = obeying_model(request).content
    assert isinstance(answer, dict)
    return Completion({**answer, "score": 100, "status": "graded"})
