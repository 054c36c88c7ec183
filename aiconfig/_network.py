"""Offline mode: the one network policy of every aiconfig job (harness, inference, monitoring).

With ``--no-network`` / ``AP_NO_NETWORK=1`` only loopback may be contacted. Two layers share one
predicate, :func:`is_loopback_host`, and one error, :class:`~aiconfig.NetworkDeniedError`:

* **URL checks** (:func:`check_network_allowed`): the vLLM client, the sidecar preflight, the
  OTLP exporter and the alert webhook refuse a non-loopback URL before they connect, with the
  config key and a fix in the message. They read ``AP_NO_NETWORK`` (or a mapping passed in).
* **The process guard** (:func:`set_offline`, :func:`offline`): a :func:`sys.addaudithook` hook
  (plus a name check in ``socket.socket``'s own methods, see ``_refuse_name_before_lookup``).
  CPython raises the ``socket.connect``, ``socket.sendto``,
  ``socket.sendmsg``, ``socket.getaddrinfo``, ``socket.gethostbyname``, ``socket.gethostbyaddr``
  and ``socket.getnameinfo`` audit events from C for *every* Python-level socket (``_socket``
  objects, asyncio, urllib3, http.client, ``socket.create_connection``), which patching
  ``socket.socket`` would miss. A hook that raises aborts the operation before the system call,
  so nothing leaves the host. Hooks cannot be removed: one is installed once and consults a
  process-wide flag.

What counts as loopback, judged without resolving a name (resolving would itself use the
network), decided once here:

* ``127.0.0.0/8`` and ``::1``: **yes**, the loopback networks.
* ``::ffff:127.0.0.1`` (IPv4-mapped loopback): **yes**; a dual-stack socket delivers it to
  127.0.0.1 (Python 3.11's ``is_loopback`` says no, so the mapped address is unwrapped first).
* ``localhost`` (a trailing dot allowed): **yes** for URL checks; the process guard then judges
  the addresses it resolves to (``/etc/hosts`` decides them, and could say anything).
* ``*.localhost``, ``localhost.localdomain``, ``ip6-localhost``: **no**. RFC 6761 reserves
  ``*.localhost``, but the resolver does not enforce it: ``x.localhost`` in ``/etc/hosts`` may
  name any address, and looking up ``secret.localhost`` can send a DNS query (a way to leak data
  in names). The others are only ``/etc/hosts`` aliases on some systems.
* ``0.0.0.0`` and ``::``: **no**; the unspecified address is not loopback (a destination only by
  a Linux quirk), and a server bound there listens on every interface.

The address judgement (:func:`is_loopback_ip`) is separate from the name judgement, so a
caller that knows the address actually connected to can judge that address alone. The guard
judges addresses: a ``connect``/``sendto`` naming a host (not an IP literal) is allowed only for
``localhost`` and only when every address it resolves to is loopback. It also refuses raw and
packet sockets (``SOCK_RAW``, ``AF_PACKET``: they bypass the address checks) and binding to a
non-loopback address (``0.0.0.0`` or ``::`` listens on every interface).

Limits (docs/harness.md): native code that calls ``connect(2)`` itself and child processes are
outside the hook; child processes inherit ``AP_NO_NETWORK=1`` (exported by :func:`set_offline`)
so the aiconfig jobs they start enforce it too.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from ._errors import NetworkDeniedError

__all__ = [
    "ENV_VAR",
    "check_network_allowed",
    "is_loopback_host",
    "is_loopback_ip",
    "is_loopback_url",
    "is_offline",
    "offline",
    "set_offline",
]

ENV_VAR = "AP_NO_NETWORK"
_TRUE = frozenset({"1", "true", "yes", "on"})
_LOOPBACK_NAMES = frozenset({"localhost"})
_HINT = "offline mode is on (--no-network / AP_NO_NETWORK=1); only loopback is allowed"

_lock = threading.Lock()
_installed = False
_offline = False


# -- the predicate ------------------------------------------------------------------------------


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an IP literal (brackets and an IPv6 zone id allowed), else None."""
    try:
        return ipaddress.ip_address(host.strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def is_loopback_ip(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for an address in 127.0.0.0/8, ``::1`` or IPv4-mapped 127.0.0.0/8; False for names."""
    ip = _ip(address) if isinstance(address, str) else address
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


@functools.lru_cache(maxsize=1024)
def is_loopback_host(host: str) -> bool:
    """True when ``host`` (a name or IP literal) is loopback without resolving it (table above)."""
    name = host.strip().lower().rstrip(".")
    if name in _LOOPBACK_NAMES:
        return True
    return is_loopback_ip(name)


def is_loopback_url(url: str) -> bool:
    """True when ``url``'s host is loopback (:func:`is_loopback_host`)."""
    return is_loopback_host(urlsplit(url).hostname or "")


# -- is offline mode on? ------------------------------------------------------------------------


def is_offline(environ: Mapping[str, str] | None = None) -> bool:
    """True when offline mode is on: the process guard, or ``AP_NO_NETWORK`` set to 1/true/yes/on.

    With ``environ`` only that mapping is consulted (what a caller was configured with).
    """
    if environ is None and _offline:
        return True
    env = os.environ if environ is None else environ
    return env.get(ENV_VAR, "").strip().lower() in _TRUE


def check_network_allowed(
    url: str, *, purpose: str, key_path: str | None = None, environ: Mapping[str, str] | None = None
) -> None:
    """Raise :class:`NetworkDeniedError` when offline mode is on and ``url`` is not loopback."""
    if is_offline(environ) and not is_loopback_url(url):
        raise NetworkDeniedError(
            f"offline mode (--no-network / AP_NO_NETWORK=1) refuses {purpose} at {url}: not a "
            "loopback address",
            path=key_path,
            hint="point it at 127.0.0.1/localhost (e.g. a local sidecar or collector) "
            "or run without --no-network/AP_NO_NETWORK",
        )


# -- the process guard --------------------------------------------------------------------------


def _needs_lookup(host: str | None) -> bool:
    """Whether resolving ``host`` could ask a DNS server: not for literals, wildcards, loopback."""
    if host is None or host == "":
        return False  # the wildcard / local address, resolved without DNS
    return _ip(host) is None and not is_loopback_host(host)


def _host_of(address: Any) -> str | None:
    """The host part of an AF_INET/AF_INET6 address tuple; None for other families."""
    if isinstance(address, tuple) and address and isinstance(address[0], str):
        return address[0]
    if isinstance(address, tuple) and address and isinstance(address[0], bytes):
        return address[0].decode("ascii", "replace")
    return None


def _deny(what: str) -> NetworkDeniedError:
    return NetworkDeniedError(f"refused {what}", hint=_HINT)


def _resolves_to_loopback(host: str, port: Any) -> bool:
    """Every address ``host`` resolves to is loopback (only asked for ``localhost``)."""
    try:
        infos = socket.getaddrinfo(host, port if isinstance(port, int) else None)
    except OSError:
        return False
    return bool(infos) and all(is_loopback_ip(str(info[4][0])) for info in infos)


def _check_sock(sock: Any, address: Any, verb: str) -> None:
    family = getattr(sock, "family", None)
    if family not in (socket.AF_INET, socket.AF_INET6):
        return  # AF_UNIX, AF_NETLINK: local by construction (raw/packet refused at creation)
    host = _host_of(address)
    if host is None:
        return
    port = address[1] if len(address) > 1 else None
    if _ip(host) is not None:
        if not is_loopback_ip(host):
            raise _deny(f"{verb} to {host}:{port}")
    elif not is_loopback_host(host) or not _resolves_to_loopback(host, port):
        # a name: judged by what it resolves to, and only localhost is resolved at all
        raise _deny(f"{verb} to {host}:{port} (not an address that is loopback)")


_LOCAL_FAMILIES = frozenset(
    f for f in (getattr(socket, n, None) for n in ("AF_UNIX", "AF_NETLINK")) if f is not None
)
_RAW = getattr(socket, "SOCK_RAW", None)


def _check_new(family: Any, kind: Any) -> None:
    """Refuse sockets that would bypass the address checks: raw, packet, other families."""
    if family in _LOCAL_FAMILIES or family in (-1, None):
        return  # -1: adopting an existing descriptor (accept, fromfd), created under this hook
    if family in (socket.AF_INET, socket.AF_INET6):
        if _RAW is not None and isinstance(kind, int) and kind & 0xF == _RAW:
            raise _deny("a raw IP socket (SOCK_RAW)")
        return
    raise _deny(f"a socket of address family {family} (raw/packet or non-IP)")


def _check_bind(sock: Any, address: Any) -> None:
    if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
        return
    host = _host_of(address)
    if host is None:
        return
    if host in ("", "0.0.0.0", "::") or (_ip(host) is not None and not is_loopback_ip(host)):  # noqa: S104 - the refused wildcard
        raise _deny(f"bind to {host or '*'}:{address[1]} (listens beyond loopback)")
    if _ip(host) is None and (not is_loopback_host(host) or not _resolves_to_loopback(host, 0)):
        raise _deny(f"bind to {host}:{address[1]} (not an address that is loopback)")


def _lookup_arg(host: Any) -> str | None:
    return host.decode("ascii", "replace") if isinstance(host, bytes) else host


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _offline or not event.startswith("socket."):
        return
    if event == "socket.__new__":
        _check_new(args[1], args[2])
    elif event == "socket.bind":
        _check_bind(args[0], args[1])
    elif event == "socket.connect":
        _check_sock(args[0], args[1], "connection")
    elif event == "socket.sendto":
        if args[1] is not None:
            _check_sock(args[0], args[1], "datagram")
    elif event == "socket.sendmsg":
        address = args[-1] if len(args) > 1 else None
        if address is not None:
            _check_sock(args[0], address, "datagram")
    elif event in ("socket.getaddrinfo", "socket.gethostbyname"):
        host = _lookup_arg(args[0])
        if _needs_lookup(host):
            raise _deny(f"DNS lookup of {host!r}")
    elif event == "socket.gethostbyaddr":
        if not is_loopback_host(args[0]):
            raise _deny(f"reverse DNS lookup of {args[0]!r}")
    elif event == "socket.getnameinfo":
        host = _host_of(args[0])
        if host is not None and not is_loopback_host(host):
            raise _deny(f"reverse DNS lookup of {host!r}")


def _refuse_name_before_lookup(sock: Any, address: Any, verb: str) -> None:
    """Refuse a host name (not an IP literal, not ``localhost``) BEFORE the C code resolves it.

    CPython resolves the name in ``connect``/``sendto``/``bind`` before raising the audit event,
    so the hook alone would let ``connect(("secret.localhost", 80))`` send a DNS query. These
    checks run in the Python-level methods of ``socket.socket`` (used by every library here).
    """
    if not _offline or getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
        return
    host = _host_of(address)
    if host is not None and host != "" and _ip(host) is None and not is_loopback_host(host):
        raise _deny(f"{verb} to {host!r}: only IP literals and localhost are resolved offline")


def _wrap_socket_methods() -> None:
    cls = socket.socket
    connect, connect_ex, sendto, bind = cls.connect, cls.connect_ex, cls.sendto, cls.bind

    def guarded_connect(self: socket.socket, address: Any) -> None:
        _refuse_name_before_lookup(self, address, "connection")
        connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        _refuse_name_before_lookup(self, address, "connection")
        return connect_ex(self, address)

    def guarded_sendto(self: socket.socket, data: Any, *args: Any) -> int:
        if args:
            _refuse_name_before_lookup(self, args[-1], "datagram")
        return sendto(self, data, *args)

    def guarded_bind(self: socket.socket, address: Any) -> None:
        _refuse_name_before_lookup(self, address, "bind")
        bind(self, address)

    for name, method in (
        ("connect", guarded_connect),
        ("connect_ex", guarded_connect_ex),
        ("sendto", guarded_sendto),
        ("bind", guarded_bind),
    ):
        setattr(cls, name, method)


def set_offline(enabled: bool) -> bool:
    """Turn the process guard on or off; returns the previous state.

    Turning it on also exports ``AP_NO_NETWORK=1`` so child aiconfig jobs inherit it (the one
    place that writes the variable; :func:`offline` restores it).
    """
    global _installed, _offline  # noqa: PLW0603 - one process-wide switch by design
    with _lock:
        if not _installed:
            sys.addaudithook(_hook)
            _wrap_socket_methods()
            _installed = True
        previous = _offline
        _offline = enabled
    if enabled:
        os.environ[ENV_VAR] = "1"
    return previous


@contextmanager
def offline(enabled: bool = True) -> Iterator[None]:
    """Offline mode for the duration of a ``with`` block (restores the flag and the variable)."""
    previous_env = os.environ.get(ENV_VAR)
    previous = set_offline(enabled)
    try:
        yield
    finally:
        set_offline(previous)
        if previous_env is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = previous_env
