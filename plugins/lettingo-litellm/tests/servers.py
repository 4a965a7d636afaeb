"""Small real HTTP servers on 127.0.0.1 that misbehave on purpose: rate limits, errors, hangs,
bodies that are not JSON, connections dropped mid-answer; and a port where nothing listens."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, NamedTuple


class Raw(NamedTuple):
    """A script entry sent verbatim: ``body`` as is (not JSON-encoded, no error wrapping)."""

    status: int
    body: str
    content_type: str = "application/json"


class Drop(NamedTuple):
    """A script entry that sends the status line and headers (promising ``length`` bytes), part of
    the body, then closes the connection: a proxy or server that died mid-answer."""

    status: int = 200
    partial: str = '{"choices": ['
    length: int = 4096


def refused_url() -> str:
    """The base URL of a 127.0.0.1 port where nothing listens (bound, then closed): connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def completion_body(text: str = "like", n: int = 1) -> dict:
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": "scripted",
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            for i in range(n)
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3 * n, "total_tokens": 12 + 3 * n},
    }


@contextlib.contextmanager
def scripted_server(script: list[tuple[int, dict] | Raw | Drop], hang_s: float = 0.0,
                    by_prompt: dict[str, tuple[int, dict] | Raw | Drop] | None = None, port: int = 0) -> Iterator[dict]:
    """Answers /v1/chat/completions with ``script``'s entries in order, then 200s. An entry is a
    (status, body dict), a :class:`Raw` (sent verbatim) or a :class:`Drop` (connection closed
    mid-answer); each error body and each Raw ``{auth}`` echoes the request's Authorization header
    (as careless servers and proxies do), to test scrubbing.
    ``by_prompt`` maps a text to the entry answered, every time, to a request whose messages contain
    it (before the script; for concurrent batches, where the order of arrival is not fixed).
    ``hang_s`` delays every answer; ``port`` 0 picks a free one.
    Yields {"url", "requests", "auth"}: the JSON bodies and Authorization headers seen."""
    state = {"requests": [], "auth": [], "script": list(script)}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            state["requests"].append(body)
            state["auth"].append(self.headers.get("Authorization") or "")
            if hang_s:
                time.sleep(hang_s)
            said = json.dumps(body.get("messages", []))
            entry = next((e for text, e in (by_prompt or {}).items() if text in said), None)
            if entry is None:
                entry = state["script"].pop(0) if state["script"] else (200, completion_body(n=body.get("n", 1)))
            if isinstance(entry, Drop):
                return self.drop(entry)
            if isinstance(entry, Raw):
                auth = self.headers.get("Authorization") or ""
                return self.answer(entry.status, entry.body.replace("{auth}", auth).encode(), entry.content_type)
            status, answer = entry
            if status != 200:
                answer = {"error": {"message": f"{answer.get('message', 'error')} (auth: "
                                               f"{self.headers.get('Authorization')})", "type": "test"}}
            self.answer(status, json.dumps(answer).encode())

        def answer(self, status: int, payload: bytes, content_type: str = "application/json"):
            try:
                self.send_response(status)
                self.send_header("content-type", content_type)
                if status == 429:
                    self.send_header("retry-after", "0")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                pass

        def drop(self, entry: Drop):
            try:
                self.send_response(entry.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(entry.length))
                self.end_headers()
                self.wfile.write(entry.partial.encode())
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"http://127.0.0.1:{server.server_address[1]}/v1", "requests": state["requests"], "auth": state["auth"]}
    finally:
        server.shutdown()
        server.server_close()
