"""A fake vLLM OpenAI server speaking vLLM's real HTTP behaviour over a real socket.

What it reproduces (from vLLM's ``vllm/entrypoints/openai/api_server.py``):

* **delayed listen**: vLLM binds its port only after loading the model; here the socket is
  bound at once but ``listen()`` is called later, so a client gets ``ECONNREFUSED`` until then;
* ``GET /health`` -> 200 with an empty body; 503 while ``loading`` is set;
* ``--api-key``: the middleware guards ``/v1/*`` only and answers 401 ``{"error": "Unauthorized"}``;
* ``GET /v1/models`` -> ``{"object": "list", "data": [{"id", "object": "model", "root", ...}]}``;
* errors in both shapes: flat ``{"object": "error", "message", "type", "param", "code"}`` and
  nested ``{"error": {"message", "type", "param", "code"}}`` (``error_shape``);
* a wrong model -> 404 "The model `X` does not exist."; ``busy`` -> 503 (with Retry-After);
* streaming: ``text/event-stream`` over chunked transfer encoding, ``data: {chunk}`` events, an
  optional usage chunk (``stream_options.include_usage``) and ``data: [DONE]``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal


@dataclass
class Behaviour:
    models: list[str] = field(default_factory=lambda: ["Qwen/Qwen2.5-0.5B-Instruct"])
    api_key: str | None = None
    loading: bool = False
    busy: int = 0  # the next N generation requests answer 503
    retry_after: str | None = None
    error_shape: Literal["flat", "nested"] = "flat"
    delay_s: float = 0.0
    stream_delay_s: float = 0.0


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up at its deadline is normal here (budget tests): stay quiet.
        pass


class FakeVLLM:
    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.requests: list[tuple[str, str, str | None]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(_Handler):
            server_ref = outer

        self._server = _Server(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self._server.daemon_threads = True
        self._server.server_bind()  # bound: the port is ours, but nothing listens yet
        self.port = int(self._server.server_address[1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self, listen_after_s: float = 0.0) -> FakeVLLM:
        def run() -> None:
            if listen_after_s:
                time.sleep(listen_after_s)
            self._server.server_activate()
            self._server.serve_forever(poll_interval=0.05)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not listen_after_s:
            _wait_listening(self.port)
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()

    def log(self, method: str, path: str, auth: str | None) -> None:
        with self._lock:
            self.requests.append((method, path, auth))

    def take_busy(self) -> bool:
        with self._lock:
            if self.behaviour.busy > 0:
                self.behaviour.busy -= 1
                return True
            return False


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError("fake vLLM did not start")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_ref: FakeVLLM

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- helpers -------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, ctype: str = "application/json", **hdr: str) -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        for k, v in hdr.items():
            self.send_header(k.replace("_", "-"), v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any, **hdr: str) -> None:
        self._send(status, json.dumps(obj).encode(), **hdr)

    def _error(self, status: int, message: str, etype: str, **hdr: str) -> None:
        err = {"message": message, "type": etype, "param": None, "code": status}
        if self.server_ref.behaviour.error_shape == "flat":
            self._json(status, {"object": "error", **err}, **hdr)
        else:
            self._json(status, {"error": err}, **hdr)

    def _authorized(self) -> bool:
        key = self.server_ref.behaviour.api_key
        if key is None or not self.path.startswith("/v1"):
            return True
        if self.headers.get("authorization") == f"Bearer {key}":
            return True
        self._json(401, {"error": "Unauthorized"})
        return False

    # -- routes --------------------------------------------------------------------------------

    def do_GET(self) -> None:
        b = self.server_ref.behaviour
        self.server_ref.log("GET", self.path, self.headers.get("authorization"))
        if self.path == "/health":
            if b.loading:
                self._error(503, "The engine is loading the model.", "ServiceUnavailableError")
            else:
                self._send(200, b"")
            return
        if not self._authorized():
            return
        if self.path == "/v1/models":
            if b.loading:
                self._error(503, "The engine is loading the model.", "ServiceUnavailableError")
                return
            data: list[dict[str, Any]] = [
                {
                    "id": m,
                    "object": "model",
                    "created": 1700000000,
                    "owned_by": "vllm",
                    "root": m,
                    "parent": None,
                    "max_model_len": 4096,
                    "permission": [],
                }
                for m in b.models
            ]
            self._json(200, {"object": "list", "data": data})
            return
        self._json(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        b = self.server_ref.behaviour
        self.server_ref.log("POST", self.path, self.headers.get("authorization"))
        length = int(self.headers.get("content-length", "0"))
        raw = self.rfile.read(length)
        if not self._authorized():
            return
        if self.path not in ("/v1/chat/completions", "/v1/completions"):
            self._json(404, {"detail": "Not Found"})
            return
        body = json.loads(raw)
        if b.loading or self.server_ref.take_busy():
            hdr = {"retry_after": b.retry_after} if b.retry_after else {}
            self._error(503, "The server is busy, retry later.", "ServiceUnavailableError", **hdr)
            return
        model = body.get("model")
        if model not in b.models:
            self._error(404, f"The model `{model}` does not exist.", "NotFoundError")
            return
        if b.delay_s:
            time.sleep(b.delay_s)
        chat = self.path == "/v1/chat/completions"
        prompt = body["messages"][-1]["content"] if chat else body["prompt"]
        words = f"echo {prompt}".split()[: int(body.get("max_tokens", 16))]
        if body.get("stream"):
            self._stream(
                chat, model, words, bool(body.get("stream_options", {}).get("include_usage"))
            )
            return
        text = " ".join(words)
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(words)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": text, "tool_calls": []},
                "logprobs": None,
                "finish_reason": "stop",
                "stop_reason": None,
            }
            obj = "chat.completion"
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}
            obj = "text_completion"
        self._json(
            200,
            {
                "id": "cmpl-fake-1",
                "object": obj,
                "created": 1700000000,
                "model": model,
                "choices": [choice],
                "usage": usage,
            },
        )

    def _stream(self, chat: bool, model: str, words: list[str], usage: bool) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

        def event(data: str) -> None:
            payload = f"data: {data}\n\n".encode()
            self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
            self.wfile.flush()

        obj = "chat.completion.chunk" if chat else "text_completion"
        base = {"id": "cmpl-fake-s", "object": obj, "created": 1700000000, "model": model}
        if chat:
            first = {
                "index": 0,
                "delta": {"role": "assistant", "content": ""},
                "finish_reason": None,
            }
            event(json.dumps({**base, "choices": [first]}))
        for i, w in enumerate(words):
            piece = w if i == 0 else " " + w
            last = i == len(words) - 1
            choice: dict[str, Any] = {"index": 0, "finish_reason": "stop" if last else None}
            if chat:
                choice["delta"] = {"content": piece}
            else:
                choice["text"] = piece
            event(json.dumps({**base, "choices": [choice]}))
            if self.server_ref.behaviour.stream_delay_s:
                time.sleep(self.server_ref.behaviour.stream_delay_s)
        if usage:
            u = {
                "prompt_tokens": 3,
                "completion_tokens": len(words),
                "total_tokens": 3 + len(words),
            }
            event(json.dumps({**base, "choices": [], "usage": u}))
        event("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
