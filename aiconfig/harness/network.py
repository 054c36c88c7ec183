"""Offline mode: refuse every non-loopback connection and every DNS lookup of a non-local name.

Enforcement uses a :func:`sys.addaudithook` hook rather than monkey-patching ``socket``: CPython
raises the ``socket.connect``, ``socket.sendto``, ``socket.sendmsg``, ``socket.getaddrinfo``,
``socket.gethostbyname``, ``socket.gethostbyaddr`` and ``socket.getnameinfo`` audit events from C
for *every* Python-level socket, including ``_socket.socket`` objects and sockets created by
asyncio, urllib3, http.client or ``socket.create_connection``, which patching ``socket.socket``
would miss. A hook that raises aborts the operation before the system call, so nothing leaves the
host. Hooks cannot be removed, so one hook is installed once and consults a process-wide flag.

Limits (documented in docs/harness.md): native code that calls ``connect(2)`` itself (a C
library with its own sockets) and child processes are outside the hook; child processes inherit
``AP_NO_NETWORK=1`` so aiconfig jobs they start enforce it too.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .._errors import NetworkDeniedError

__all__ = ["is_loopback_address", "is_offline", "offline", "set_offline"]

_LOCAL_NAMES = frozenset({"localhost", "localhost.", "localhost.localdomain", "ip6-localhost"})
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 - binding addresses, not targets
_HINT = "offline mode is on (--no-network / AP_NO_NETWORK=1); only loopback is allowed"

_lock = threading.Lock()
_installed = False
_offline = False


@functools.lru_cache(maxsize=1024)
def is_loopback_address(host: str) -> bool:
    """True for 127.0.0.0/8, ::1, IPv4-mapped loopback, wildcard binds and ``localhost``."""
    name = host.strip().lower()
    if name in _LOCAL_NAMES or name.endswith(".localhost") or name in _WILDCARDS:
        return True
    name = name.split("%", 1)[0].strip("[]")
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0].strip("[]"))
    except ValueError:
        return False
    return True


def _host_of(address: Any) -> str | None:
    """The host part of an AF_INET/AF_INET6 address tuple; None for other families."""
    if isinstance(address, tuple) and address and isinstance(address[0], str):
        return address[0]
    if isinstance(address, tuple) and address and isinstance(address[0], bytes):
        return address[0].decode("ascii", "replace")
    return None


def _deny(what: str) -> NetworkDeniedError:
    return NetworkDeniedError(f"refused {what}", hint=_HINT)


def _check_sock(sock: Any, address: Any, verb: str) -> None:
    family = getattr(sock, "family", None)
    if family not in (socket.AF_INET, socket.AF_INET6):
        return  # AF_UNIX, AF_NETLINK ...: local by construction
    host = _host_of(address)
    if host is not None and not is_loopback_address(host):
        raise _deny(f"{verb} to {host}:{address[1]}")


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _offline or not event.startswith("socket."):
        return
    if event == "socket.connect":
        _check_sock(args[0], args[1], "connection")
    elif event in ("socket.sendto", "socket.sendmsg"):
        if args[1] is not None:
            _check_sock(args[0], args[1], "datagram")
    elif event == "socket.getaddrinfo":
        host = args[0]
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        if host is not None and not is_loopback_address(host) and not _is_ip_literal(host):
            raise _deny(f"DNS lookup of {host!r}")
    elif event == "socket.gethostbyname":
        host = args[0]
        if not is_loopback_address(host) and not _is_ip_literal(host):
            raise _deny(f"DNS lookup of {host!r}")
    elif event == "socket.gethostbyaddr":
        if not is_loopback_address(args[0]):
            raise _deny(f"reverse DNS lookup of {args[0]!r}")
    elif event == "socket.getnameinfo":
        host = _host_of(args[0])
        if host is not None and not is_loopback_address(host):
            raise _deny(f"reverse DNS lookup of {host!r}")


def set_offline(enabled: bool) -> bool:
    """Turn offline mode on or off for the whole process; returns the previous state.

    Turning it on also exports ``AP_NO_NETWORK=1`` so child aiconfig jobs inherit it.
    """
    global _installed, _offline  # noqa: PLW0603 - one process-wide switch by design
    with _lock:
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True
        previous = _offline
        _offline = enabled
    if enabled:
        os.environ["AP_NO_NETWORK"] = "1"
    return previous


def is_offline() -> bool:
    return _offline


@contextmanager
def offline(enabled: bool = True) -> Iterator[None]:
    """Offline mode for the duration of a ``with`` block (restores the previous state)."""
    previous_env = os.environ.get("AP_NO_NETWORK")
    previous = set_offline(enabled)
    try:
        yield
    finally:
        set_offline(previous)
        if previous_env is None:
            os.environ.pop("AP_NO_NETWORK", None)
        else:
            os.environ["AP_NO_NETWORK"] = previous_env
