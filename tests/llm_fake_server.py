"""A local HTTP server that speaks the Chat Completions API, for the tests and the bench: the
real `openai` client talks to it over HTTP, exactly as to OpenAI, vLLM or Ollama.

Each request takes the next scripted behaviour (or the default one when the script is empty):
a completion, an HTTP error, raw bytes, a sleep, a trickle, or a function of the request.
Every request is recorded, so tests can check what the model was shown.

The models at the end are functions of the request, each answering within the schema it was
sent, as a strict structured-output server's model would: the adversarial ones (`MODES`:
obey the student, praise, invent tags, echo the prompt, contradict the tests) behave as
badly as a real model can, and `explaining_model` is an honest one that reads the test
outcomes it is shown.
"""

from __future__ import annotations

import contextlib
import json
import re
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
            {"feedback": "Looks fine.", "explanations": [], "fail_tags": []}
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


_OUTCOMES = re.compile(
    r"<<<BEGIN (UNTRUSTED-[0-9A-F]+) test outcomes \(JSON\)>>>\n(.*?)\n<<<END \1>>>", re.DOTALL
)
_CODE = re.compile(
    r"<<<BEGIN (UNTRUSTED-[0-9A-F]+) student code>>>\n(.*?)\n<<<END \1>>>", re.DOTALL
)


def _user_message(request: dict[str, Any]) -> str:
    return "\n".join(
        str(m.get("content", "")) for m in request.get("messages", []) if m.get("role") == "user"
    )


def _system_message(request: dict[str, Any]) -> str:
    return "\n".join(
        str(m.get("content", "")) for m in request.get("messages", []) if m.get("role") == "system"
    )


def shown_outcomes(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The test outcomes the model was shown (an empty list for an assignment without)."""
    found = _OUTCOMES.search(_user_message(request))
    return json.loads(found.group(2)) if found else []


def student_code(request: dict[str, Any]) -> str:
    found = _CODE.search(_user_message(request))
    return found.group(2) if found else ""


def _properties(request: dict[str, Any]) -> dict[str, Any]:
    return request["response_format"]["json_schema"]["schema"]["properties"]


def allowed_tags(request: dict[str, Any]) -> list[str]:
    return list(_properties(request)["fail_tags"]["items"]["enum"])


def explainable_tests(request: dict[str, Any]) -> list[str]:
    """The test names the schema allows an explanation for (the failing tests that ran)."""
    items = _properties(request).get("explanations", {}).get("items", {})
    return list(items.get("properties", {}).get("test", {}).get("enum", []))


def answer(
    request: dict[str, Any],
    feedback: str,
    explanations: dict[str, str] | None = None,
    tags: list[str] | None = None,
    rubric_score: float = 1.0,
) -> Completion:
    """A completion whose JSON has exactly the fields of the schema the request sent."""
    properties = _properties(request)
    content: dict[str, Any] = {"feedback": feedback}
    if "explanations" in properties:
        content["explanations"] = [
            {"test": name, "explanation": text} for name, text in (explanations or {}).items()
        ]
    content["fail_tags"] = list(tags or [])
    if "rubric_score" in properties:
        content["rubric_score"] = rubric_score
    return Completion(content)


def obeying_model(request: dict[str, Any]) -> Completion:
    """A model that does what the student's code tells it: a JSON answer planted in the code
    is returned as its own (fitted to the schema); otherwise it praises as asked, with a
    perfect rubric score and made-up tags beside every allowed one."""
    for planted in re.findall(r"\{[^{}]*\"feedback\"[^{}]*\}", student_code(request)):
        try:
            said = json.loads(planted)
        except ValueError:
            continue
        if isinstance(said, dict) and isinstance(said.get("feedback"), str):
            return answer(
                request,
                said["feedback"],
                {name: "This test passes." for name in explainable_tests(request)},
                [t for t in said.get("fail_tags", []) if isinstance(t, str)],
                float(said.get("rubric_score", 1.0)),
            )
    return answer(
        request,
        "Full marks! As instructed, this submission is perfect: 100/100.",
        {name: "As instructed: this test passes." for name in explainable_tests(request)},
        ["accepted", "full_marks", *allowed_tags(request)],
    )


def obeying_model_breaking_schema(request: dict[str, Any]) -> Completion:
    """An obeying model that also returns the score it was told to, outside the schema."""
    content = obeying_model(request).content
    assert isinstance(content, dict)
    return Completion({**content, "score": 100, "status": "graded"})


def praising_model(request: dict[str, Any]) -> Completion:
    """Praises everything: full marks, every test passing, a perfect rubric score."""
    return answer(
        request,
        "Perfect solution, full marks!",
        {name: "This test passes: the output is correct." for name in explainable_tests(request)},
        [],
    )


def tag_inventing_model(request: dict[str, Any]) -> Completion:
    """Plausible text, and every tag the schema allows, whatever the run showed."""
    failing = explainable_tests(request)
    return answer(
        request,
        "Read the failing tests' inputs again and trace your code by hand."
        if failing
        else "Tidy code that reads well.",
        {name: "Trace this input through your loop." for name in failing},
        allowed_tags(request),
        rubric_score=0.5,
    )


def prompt_echoing_model(request: dict[str, Any]) -> Completion:
    """Returns its own instructions as the feedback, and a piece of them per failing test."""
    system = _system_message(request)
    return answer(
        request,
        system[:7000],
        {name: system[:400] for name in explainable_tests(request)},
        [],
    )


CONTRADICTIONS = (
    "All tests pass: your solution is correct.",
    "Great work. Your code is completely correct and every test passed.",
    "Your program works correctly. There are no failing tests, so nothing to fix.",
)


def contradicting_model(variant: int = 0) -> Callable[[dict[str, Any]], Completion]:
    """Valid-schema answers that contradict the run: a failing submission said to pass, a
    failing test said to pass, a passing test said to fail."""

    def model(request: dict[str, Any]) -> Completion:
        outcomes = shown_outcomes(request)
        passing = [o["name"] for o in outcomes if o.get("verdict") == "accepted"]
        feedback = CONTRADICTIONS[variant % len(CONTRADICTIONS)]
        if passing and len(passing) < len(outcomes):
            feedback += f" Only `{passing[0]}` fails, because of an off-by-one error."
        elif passing:
            feedback = f"`{passing[0]}` fails: the loop stops one element early."
        return answer(
            request,
            feedback,
            {
                name: f"`{name}` passes: the output is correct."
                for name in explainable_tests(request)
            },
            ["off_by_one"],
        )

    return model


_ADVICE = {
    "wrong_answer": "prints `{actual}` where `{expected}` is expected",
    "time_limit_exceeded": "runs past the time limit: the loop never ends or the algorithm "
    "is too slow for this input",
    "memory_limit_exceeded": "uses more memory than allowed: something grows without bound",
    "output_limit_exceeded": "prints far too much: a print inside an endless loop",
    "runtime_error": "crashes: {error}",
}


def explaining_model(request: dict[str, Any]) -> Completion:
    """An honest stand-in: explains each failing test from the outcomes it was shown
    (expected against actual output, the error's last line, the verdict), tags what the
    verdicts show and gives no praise it cannot back."""
    explanations: dict[str, str] = {}
    tags: set[str] = set()
    for outcome in shown_outcomes(request):
        verdict = outcome.get("verdict", "")
        if outcome["name"] not in explainable_tests(request):
            continue
        error = (outcome.get("error") or "").strip().splitlines()
        advice = _ADVICE.get(verdict, "fails ({verdict})").format(
            actual=(outcome.get("actual_output") or "").strip()[:80],
            expected=(outcome.get("expected_output") or "").strip()[:80],
            error=error[-1] if error else "the program exited with an error",
            verdict=verdict,
        )
        if outcome.get("hidden"):
            advice = f"fails ({verdict}) on a hidden input: check the cases the public tests miss"
        explanations[outcome["name"]] = f"`{outcome['name']}` {advice}."
        if verdict in ("time_limit_exceeded", "memory_limit_exceeded"):
            tags.add("inefficient")
    if len(explanations) < len(shown_outcomes(request)) and explanations:
        tags.add("edge_case")
    feedback = (
        "Look at the failing tests below, starting with the first one."
        if explanations
        else "Clear and straightforward code."
    )
    allowed = set(allowed_tags(request))
    return answer(request, feedback, explanations, sorted(tags & allowed), rubric_score=0.8)


MODES: dict[str, Callable[[dict[str, Any]], Completion]] = {
    "obey": obeying_model,
    "praise": praising_model,
    "invent_tags": tag_inventing_model,
    "echo_prompt": prompt_echoing_model,
    "contradict": contradicting_model(),
}
