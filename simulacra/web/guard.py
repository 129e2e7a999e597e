"""What the web view does about a run folder it cannot trust and a network it does not own.

A run folder is data from anyone (a colleague's zip, a downloaded benchmark run): the page builds every value into
the DOM as text, and the headers here keep a slip from running anything (a strict Content-Security-Policy, no
inline script or style). The server answers only requests that name it in ``Host``, so a web page on another
site cannot reach it through a DNS name that it points at 127.0.0.1 (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from simulacra.web.run_index import ViewError

__all__ = ["SECURITY_HEADERS", "Guard", "check_host", "exposure_warning", "listen_port", "parse_host_header"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff",
                    "referrer-policy": "no-referrer", "x-frame-options": "DENY",
                    "cross-origin-resource-policy": "same-origin"}
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


class Guard:
    """ASGI middleware: refuses a request whose ``Host`` is not the bound address, and adds `SECURITY_HEADERS`.

    A loopback bind answers to ``127.0.0.1``, ``localhost`` and ``[::1]`` (and the bound address itself); another
    bind to its own address; a wildcard bind (``0.0.0.0``, ``::``) to any IP address and this machine's names.
    An IP address is safe in ``Host``: rebinding needs a DNS name that the attacker controls. The port must be
    the bound one.

    Example:
        app = Guard(make_app(index), host="127.0.0.1", port=8765)
    """

    def __init__(self, app: App, *, host: str | None, port: int) -> None:
        """Wraps ``app``.

        Args:
            app: The ASGI app.
            host: The address the server listens on; None: no ``Host`` check (an app that no socket serves,
                e.g. a test client's).
            port: The port it listens on.
        """
        self.app, self.host, self.port = app, host, port
        self.names = None if host is None else _names(host)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answers 400 to a foreign ``Host``; otherwise serves ``scope`` with the headers added."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.allows(_header(scope, b"host")):
            body = b"400 Bad Request: this view answers only to the address it listens on\n"
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                    (b"content-length", str(len(body)).encode()), *_encoded()]})
            await send({"type": "http.response.body", "body": body})
            return

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in _encoded() if h[0] not in names)]
            await send(message)

        await self.app(scope, receive, send_guarded)

    def allows(self, header: str | None) -> bool:
        """Whether a request with this ``Host`` header is answered."""
        if self.names is None:
            return True
        parsed = parse_host_header(header or "")
        if parsed is None or parsed[1] != self.port:
            return False
        name = parsed[0]
        if self.names == "*":
            return name in _own_names() or _is_ip(name)
        return name in self.names


def parse_host_header(header: str) -> tuple[str, int] | None:
    """``Host``'s name (lower case, IPv6 without brackets) and port (80 when absent); None: malformed.

    Example:
        parse_host_header("[::1]:8765") == ("::1", 8765)
    """
    header = header.strip().lower()
    if header.startswith("["):
        name, _, rest = header[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ("" if not rest else None)
    else:
        name, colon, port = header.partition(":")
        port = port if colon else ""
    if not name or port is None or not (port == "" or (port.isascii() and port.isdigit() and len(port) <= 5)):
        return None
    return name, int(port or 80)


def listen_port(raw: int | str) -> int:
    """``--port`` as a number, 0..65535 (0: any free one).

    Raises:
        ViewError: Not a whole number, or out of range (one line).
    """
    try:
        port = int(str(raw).strip())
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        msg = f"--port {raw!r}: not a port; give a whole number 0..65535 (0: any free one), e.g. --port 8765"
        raise ViewError(msg)
    return port


def check_host(host: str) -> str:
    """``--host``, refused when empty.

    Raises:
        ViewError: An empty address (one line).
    """
    bare = host.strip()
    if bare.startswith("[") and bare.endswith("]"):  # an IPv6 address as URLs write it
        bare = bare[1:-1]
    if not bare:
        msg = f"--host {host!r}: empty; give the address to listen on, e.g. --host 127.0.0.1 (this machine only)"
        raise ViewError(msg)
    return bare


def exposure_warning(host: str) -> str | None:
    """The warning line for listening where others can connect; None for a loopback address."""
    if _is_loopback(host):
        return None
    return (f"warning: --host {host}: not a loopback address; anyone who can reach it can read this run (its "
            f"events, agents and memories); use --host 127.0.0.1 to keep it to this machine")


def _names(host: str) -> frozenset[str] | str:
    host = host.strip().lower().strip("[]")
    if _is_loopback(host):
        return LOOPBACK_NAMES | {host}
    if _is_ip(host) and ipaddress.ip_address(host).is_unspecified:
        return "*"
    return frozenset({host})


def _own_names() -> frozenset[str]:
    return LOOPBACK_NAMES | {socket.gethostname().lower(), socket.getfqdn().lower()}


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    host = host.strip().lower().strip("[]")
    return host == "localhost" or (_is_ip(host) and ipaddress.ip_address(host).is_loopback)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _encoded() -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
