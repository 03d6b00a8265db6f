"""A scripted OpenAI-style server for the tests (stdlib http.server in a thread
on 127.0.0.1): GET /v1/models lists one model, POST /v1/chat/completions
answers the queued replies, then `default`; every request is recorded. `down`
makes it answer 503 to everything (the health check too); `stop` closes it
(connection refused) and `start` opens it again on the same port."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict -> JSON; str -> sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def choices(body: dict[str, Any], n: int | None = None) -> Reply:
    """A reply whose every choice names the prompt it answers (its hash) and the seed."""
    n = body.get("n", 1) if n is None else n
    tag = hashlib.sha256(body["messages"][0]["content"].encode()).hexdigest()[:8]
    answers = [
        {
            "index": i,
            "message": {"role": "assistant", "content": f"{tag} seed={body['seed']} choice={i}"},
            "finish_reason": "stop",
        }
        for i in range(n)
    ]
    usage = {"prompt_tokens": 11, "completion_tokens": 5 * n}
    return Reply(body={"id": "x", "object": "chat.completion", "choices": answers, "usage": usage})


@dataclass
class FakeServer:
    """Answers GET /v1/models with one model and POST /v1/chat/completions with
    the queued replies (then with `default`); records every request."""

    url: str
    chat_replies: list[Reply | Callable[[dict[str, Any]], Reply]]
    default: Callable[[dict[str, Any]], Reply]
    models: list[dict[str, Any]] = field(default_factory=lambda: [{"id": "fake-grm"}])
    tokenize: Callable[[dict[str, Any]], Reply] | None = None  # POST /tokenize (vLLM)
    requests: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    down: bool = False  # answer 503 to everything
    lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = field(default=None, repr=False)

    def chat_bodies(self) -> list[dict[str, Any]]:
        return [body for path, body, _ in self.requests if path.endswith("/chat/completions")]

    def health_checks(self) -> int:
        return sum(1 for path, _, _ in self.requests if path == "/v1/models")

    @property
    def port(self) -> int:
        return int(self.url.split(":")[2].split("/")[0])

    def start(self, port: int = 0) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        """Close the server: connections are refused until `start(self.port)`."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


def _handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, reply: Reply) -> None:
            time.sleep(reply.delay_s)
            payload = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
            data = payload.encode()
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            server.requests.append((self.path, {}, dict(self.headers)))
            if server.down:
                self._send(Reply(503, {"error": {"message": "down for the test"}}))
            elif self.path == "/v1/models":
                self._send(Reply(body={"object": "list", "data": server.models}))
            else:
                self._send(Reply(404, {"detail": "Not Found"}))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            with server.lock:
                server.requests.append((self.path, body, dict(self.headers)))
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
                queued = server.chat_replies.pop(0) if server.chat_replies else server.default
            try:
                if server.down:
                    self._send(Reply(503, {"error": {"message": "down for the test"}}))
                elif self.path == "/tokenize" and server.tokenize is not None:
                    self._send(server.tokenize(body))
                elif self.path != "/v1/chat/completions":
                    self._send(Reply(404, {"detail": "Not Found"}))
                else:
                    self._send(queued(body) if callable(queued) else queued)
            finally:
                with server.lock:
                    server.in_flight -= 1

    return Handler


@contextmanager
def fake_server() -> Iterator[FakeServer]:
    """A started FakeServer, closed afterwards."""
    server = FakeServer(url="", chat_replies=[], default=choices)
    server.start()
    try:
        yield server
    finally:
        server.stop()
