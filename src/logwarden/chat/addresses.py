"""Which address a connection comes from, and which origins may open a chat."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from logwarden.errors import ConfigError

__all__ = ["OriginPolicy", "TrustedProxies"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """Resolves the client address from the socket peer and ``X-Forwarded-For``.

    The header is believed only when the peer is a configured proxy, and then read from the
    right: each hop that is itself a trusted proxy is skipped, and the first other address is
    the client. Entries further left were written by the client and could say anything.
    (Written here rather than using uvicorn's proxy middleware, which passes a malformed entry
    on as the client "address"; we need a valid IP for the pseudonym and the log.)
    """

    def __init__(self, proxies: Iterable[str]) -> None:
        networks: list[IPNetwork] = []
        for entry in proxies:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ConfigError(
                    f"trusted_proxies: {entry!r} is not an IP address or network"
                ) from None
        self._networks = tuple(networks)

    def client_address(self, peer: str, forwarded_for: str | None) -> str:
        if not forwarded_for or not self._is_trusted(peer):
            return peer
        for hop in reversed(forwarded_for.split(",")):
            hop = hop.strip()
            try:
                address = ipaddress.ip_address(hop)
            except ValueError:
                return peer  # a trusted proxy wrote garbage: the proxy is all we know
            if not self._is_trusted(str(address)):
                return str(address)
        return peer

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)


class OriginPolicy:
    """Which pages may open a chat: the configured origins, and the page's own.

    A browser always sends ``Origin`` on a WebSocket handshake, so checking it stops another
    site from opening a chat in a visitor's name; a client without ``Origin`` is not a browser
    page (a bot or a native app) and has no ambient authority to abuse, so it is allowed.

    "The page's own" means the origin names the host the request was sent to, and only when
    that host is an IP address or ``localhost``. A host *name* cannot vouch for itself: with
    DNS rebinding an attacker's name resolves to our address, and the browser then sends a
    matching ``Host`` and ``Origin``. A deployment under a domain lists its public origin in
    ``allowed_origins``.
    """

    def __init__(self, allowed: Iterable[str]) -> None:
        self._allowed = frozenset(_normal_origin(origin) for origin in allowed)

    def allows(self, origin: str | None, host: str | None) -> bool:
        if origin is None:
            return True
        normal = _normal_origin(origin)
        if normal in self._allowed:
            return True
        # Same host as the page was served from; the scheme may differ behind a TLS proxy.
        parts = urlsplit(normal)
        return (
            host is not None
            and parts.scheme in ("http", "https")
            and parts.netloc == host.strip().lower()
            and _is_address_or_localhost(parts.hostname)
        )


def _is_address_or_localhost(hostname: str | None) -> bool:
    if hostname is None:
        return False
    if hostname == "localhost":
        return True
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return False
    return True


def _normal_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()
