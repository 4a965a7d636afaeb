"""Small real HTTP servers on 127.0.0.1 that misbehave on purpose: rate limits, errors, hangs."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


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
def scripted_server(script: list[tuple[int, dict]], hang_s: float = 0.0) -> Iterator[dict]:
    """Answers /v1/chat/completions with ``script``'s (status, body) in order, then 200s; each error
    body echoes the request's Authorization header (as careless servers do), to test scrubbing.
    ``hang_s`` delays every answer. Yields {"url", "requests", "auth"}: the JSON bodies and Authorization headers seen."""
    state = {"requests": [], "auth": [], "script": list(script)}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            state["requests"].append(body)
            state["auth"].append(self.headers.get("Authorization") or "")
            if hang_s:
                time.sleep(hang_s)
            status, answer = state["script"].pop(0) if state["script"] else (200, completion_body(n=body.get("n", 1)))
            if status != 200:
                answer = {"error": {"message": f"{answer.get('message', 'error')} (auth: "
                                               f"{self.headers.get('Authorization')})", "type": "test"}}
            payload = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                if status == 429:
                    self.send_header("retry-after", "0")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"http://127.0.0.1:{server.server_address[1]}/v1", "requests": state["requests"], "auth": state["auth"]}
    finally:
        server.shutdown()
        server.server_close()
