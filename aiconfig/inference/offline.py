"""Offline mode: with ``AP_NO_NETWORK=1`` only loopback addresses may be contacted.

The check looks at the URL's host only and never resolves a name (resolving would itself touch
the network): ``localhost``, ``127.0.0.0/8`` and ``::1`` pass, anything else is refused with an
:class:`OfflineModeError` that says how to fix it.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from ._errors import OfflineModeError

__all__ = ["check_network_allowed", "is_loopback_url", "offline_mode"]

_TRUE = {"1", "true", "yes", "on"}


def offline_mode(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``AP_NO_NETWORK`` is set to 1/true/yes/on."""
    env = os.environ if environ is None else environ
    return env.get("AP_NO_NETWORK", "").strip().lower() in _TRUE


def is_loopback_url(url: str) -> bool:
    """True when ``url``'s host is ``localhost`` or a loopback IP literal."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_network_allowed(
    url: str, *, purpose: str, key_path: str | None = None, environ: Mapping[str, str] | None = None
) -> None:
    """Raise :class:`OfflineModeError` when offline mode is on and ``url`` is not loopback."""
    if offline_mode(environ) and not is_loopback_url(url):
        raise OfflineModeError(
            f"offline mode (AP_NO_NETWORK=1) refuses {purpose} at {url}: not a loopback address",
            path=key_path,
            hint="point it at 127.0.0.1/localhost (e.g. a local sidecar or collector) "
            "or run without --no-network/AP_NO_NETWORK",
        )
