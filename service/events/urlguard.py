"""Which webhook URLs may be called: the SSRF guard, applied at creation and at delivery."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from service.i18n import Message, msg

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(ValueError):
    """The URL may not be called; the message says why, without resolving details."""

    def __init__(self, message: Message) -> None:
        super().__init__(str(message))
        self.message = message


@dataclass(frozen=True)
class Target:
    """A checked URL and the address to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress

    @property
    def connect_url(self) -> str:
        """The URL with the checked address in place of the host name."""
        parts = urlsplit(self.url)
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        path = parts.path or "/"
        query = f"?{parts.query}" if parts.query else ""
        return f"{self.scheme}://{host}:{self.port}{path}{query}"

    @property
    def host_header(self) -> str:
        """The Host header the receiver expects."""
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def resolve(host: str, port: int) -> list[str]:
    """Every address the host name resolves to now."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


_V6 = ipaddress.IPv6Network

# IPv6 forms that carry an IPv4 address inside them. A connection to one of them reaches (or
# can be steered to) that IPv4 address, so it is judged by the IPv4 address it carries; the
# standard library's `is_global` looks at the IPv6 prefix only.
# NAT64 with the well-known prefix (RFC 6052 §2.1): the gateway forwards to the last 32 bits.
_NAT64 = _V6("64:ff9b::/96")
# 6to4 (RFC 3056): the relay tunnels to the IPv4 address in bits 16-47.
_SIX_TO_FOUR = _V6("2002::/16")
# IPv4-mapped (RFC 4291 §2.5.5.2): the kernel connects over IPv4 to the last 32 bits.
_MAPPED = _V6("::ffff:0:0/96")
# Forms that are never a public receiver, whatever IPv4 address they carry: NAT64 for local use
# (RFC 8215, not globally reachable), Teredo (RFC 4380: the server address in bits 32-63, the
# client's inverted in the last 32; not globally reachable per the IANA registry), IPv4-compatible
# (RFC 4291 §2.5.5.1, deprecated; `::` and `::1` are in it too) and IPv4-translated (RFC 2765
# SIIT, `::ffff:0:a.b.c.d`, only meaningful inside a translator's own network).
_NEVER_PUBLIC = (
    _V6("64:ff9b:1::/48"),
    _V6("2001::/32"),
    _V6("::/96"),
    _V6("::ffff:0:0:0/96"),
)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a NAT64, 6to4 or IPv4-mapped address leads to (None for other forms)."""
    if address in _MAPPED or address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return address.sixtofour
    return None


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address, and for an IPv6 address that carries
    an IPv4 address only when that IPv4 address is one."""
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in network for network in _NEVER_PUBLIC):
            return False
        carried = embedded_ipv4(address)
        if carried is not None:
            return is_public(carried)
    return address.is_global and not address.is_multicast


def check_url(url: str, *, https_only: bool) -> tuple[str, str, int]:
    """The URL's (scheme, host, port) if its form is acceptable."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(msg("the URL is not valid")) from exc
    scheme = parts.scheme.lower()
    allowed = ("https",) if https_only else ("https", "http")
    if scheme not in allowed:
        raise UrlRefused(
            msg("the URL must use https")
            if https_only
            else msg("the URL must use https or http")
        )
    if parts.username is not None or parts.password is not None:
        raise UrlRefused(msg("the URL must not carry credentials"))
    if parts.fragment:
        raise UrlRefused(msg("the URL must not have a fragment"))
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRefused(msg("the URL has no host"))
    return scheme, host, port or (443 if scheme == "https" else 80)


def target(url: str, *, https_only: bool, allow_private: bool) -> Target:
    """Check the URL, resolve its host now and pick an address that may be called.

    Every address the name resolves to must be public (unless private ones are allowed): a
    name that resolves to both would otherwise let the connection land on the private one.
    The caller connects to `address` itself, so a second resolution cannot change it.
    """
    scheme, host, port = check_url(url, https_only=https_only)
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolve(host, port)]
        except (OSError, UnicodeError, ValueError) as exc:
            raise UrlRefused(msg("the host name does not resolve")) from exc
    if not addresses:
        raise UrlRefused(msg("the host name does not resolve"))
    if not allow_private and not all(is_public(a) for a in addresses):
        raise UrlRefused(
            msg("the URL points to a loopback, private or otherwise non-public address")
        )
    return Target(url=url, scheme=scheme, host=host, port=port, address=addresses[0])
