"""HTTP helpers shared by the sidecar preflight and the vLLM client.

We use httpx rather than the standard library: inference is async, and ``urllib`` would block
the event loop (or need a thread per request); httpx is maintained, gives separate connect/read
timeouts, connection pooling with keep-alive, response streaming for SSE, and a transport seam
for tests. ``trust_env=False`` keeps ``HTTP(S)_PROXY`` from routing loopback traffic to a proxy.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx

from aiconfig import VLLMConfig

__all__ = ["error_message", "make_client", "server_address"]


def make_client(
    cfg: VLLMConfig,
    *,
    base_url: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    read_timeout_s: float | None = None,
) -> httpx.AsyncClient:
    headers = {"accept": "application/json"}
    if cfg.api_key is not None:
        headers["authorization"] = f"Bearer {cfg.api_key.get_secret_value()}"
    return httpx.AsyncClient(
        base_url=(base_url or cfg.base_url).rstrip("/"),
        headers=headers,
        timeout=httpx.Timeout(read_timeout_s, connect=cfg.connect_timeout_s),
        transport=transport,
        trust_env=False,
        follow_redirects=False,
    )


def error_message(body: bytes, limit: int = 300) -> str:
    """The human message from a vLLM/OpenAI error body, whatever its shape.

    Shapes seen from vLLM: ``{"object": "error", "message": ..., "type": ..., "code": ...}``
    (flat), ``{"error": {"message": ..., "type": ..., "code": ...}}`` (nested, OpenAI style),
    ``{"error": "Unauthorized"}`` (the API-key middleware) and FastAPI's ``{"detail": ...}``.
    """
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data: Any = json.loads(text)
    except ValueError:
        return text[:limit] or "(empty body)"
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:limit]
        if isinstance(err, str):
            return err[:limit]
        for key in ("message", "detail"):
            if data.get(key):
                return str(data[key])[:limit]
    return text[:limit]


def server_address(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.hostname or "", port
