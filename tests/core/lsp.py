"""A minimal Language Server Protocol client over stdio, for driving a real yaml-language-server.

Only what the editor tests need: initialize, configuration replies, didOpen, completion, and
waiting for ``textDocument/publishDiagnostics``. JSON-RPC framing per the LSP specification
(``Content-Length`` headers).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any


class LanguageServer:
    """``yaml-language-server --stdio`` with the given ``yaml`` settings."""

    def __init__(self, root: Path, yaml_settings: dict[str, Any]) -> None:
        self.settings = {"yaml": yaml_settings}
        self.proc = subprocess.Popen(
            ["yaml-language-server", "--stdio"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self._next_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        init = self.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": root.as_uri(),
                "capabilities": {
                    "workspace": {"configuration": True},
                    "textDocument": {"publishDiagnostics": {}, "completion": {}, "hover": {}},
                },
            },
        )
        self.wait_for(lambda m: m.get("id") == init and "result" in m)
        self.notify("initialized", {})
        self.notify("workspace/didChangeConfiguration", {"settings": self.settings})

    def __enter__(self) -> LanguageServer:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            headers = {}
            while True:
                line = out.readline()
                if not line:
                    return
                text = line.decode("ascii").strip()
                if not text:
                    break
                key, value = text.split(":", 1)
                headers[key.lower()] = value.strip()
            self.inbox.put(json.loads(out.read(int(headers["content-length"]))))

    def _send(self, message: dict[str, Any]) -> None:
        data = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any]) -> int:
        self._next_id += 1
        self._send({"id": self._next_id, "method": method, "params": params})
        return self._next_id

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self._send({"method": method, "params": params})

    def wait_for(self, match: Any, timeout: float = 60.0) -> dict[str, Any]:
        """The next message ``match`` accepts; server requests are answered meanwhile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            if match(message):
                return message
            if message.get("method") == "workspace/configuration":
                items = message["params"]["items"]
                result = [self.settings.get(i.get("section", "")) for i in items]
                self._send({"id": message["id"], "result": result})
            elif "method" in message and "id" in message:
                self._send({"id": message["id"], "result": None})
        raise TimeoutError("no matching message from yaml-language-server")

    def open(self, path: Path, text: str) -> None:
        doc = {"uri": path.as_uri(), "languageId": "yaml", "version": 1, "text": text}
        self.notify("textDocument/didOpen", {"textDocument": doc})

    def diagnostics(self, path: Path) -> list[dict[str, Any]]:
        """The first non-empty diagnostics published for ``path``."""
        uri = path.as_uri()
        message = self.wait_for(
            lambda m: (
                m.get("method") == "textDocument/publishDiagnostics"
                and m["params"]["uri"] == uri
                and m["params"]["diagnostics"]
            )
        )
        diags: list[dict[str, Any]] = message["params"]["diagnostics"]
        return diags

    def quiet(self, path: Path, seconds: float = 3.0) -> list[dict[str, Any]]:
        """Every diagnostic published for ``path`` within ``seconds`` (expected: none)."""
        uri = path.as_uri()
        found: list[dict[str, Any]] = []
        try:
            while True:
                msg = self.wait_for(
                    lambda m: (
                        m.get("method") == "textDocument/publishDiagnostics"
                        and m["params"]["uri"] == uri
                    ),
                    timeout=seconds,
                )
                found += msg["params"]["diagnostics"]
        except TimeoutError:
            return found

    def complete(self, path: Path, line: int, character: int) -> list[str]:
        rid = self.request(
            "textDocument/completion",
            {
                "textDocument": {"uri": path.as_uri()},
                "position": {"line": line, "character": character},
            },
        )
        reply = self.wait_for(lambda m: m.get("id") == rid and "method" not in m)
        result = reply.get("result") or {}
        items = result.get("items", []) if isinstance(result, dict) else result
        return [str(i["label"]) for i in items]

    def hover(self, path: Path, line: int, character: int) -> str:
        rid = self.request(
            "textDocument/hover",
            {
                "textDocument": {"uri": path.as_uri()},
                "position": {"line": line, "character": character},
            },
        )
        reply = self.wait_for(lambda m: m.get("id") == rid and "method" not in m)
        contents = (reply.get("result") or {}).get("contents", "")
        return str(contents.get("value", "") if isinstance(contents, dict) else contents)
