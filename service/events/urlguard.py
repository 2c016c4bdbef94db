"""Which webhook URLs may be called: the SSRF guard, applied at creation and at delivery."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(ValueError):
    """The URL may not be called; the message says why, without resolving details."""


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


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_url(url: str, *, https_only: bool) -> tuple[str, str, int]:
    """The URL's (scheme, host, port) if its form is acceptable."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused("the URL is not valid") from exc
    scheme = parts.scheme.lower()
    allowed = ("https",) if https_only else ("https", "http")
    if scheme not in allowed:
        raise UrlRefused("the URL must use " + " or ".join(allowed))
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("the URL must not carry credentials")
    if parts.fragment:
        raise UrlRefused("the URL must not have a fragment")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRefused("the URL has no host")
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
            raise UrlRefused("the host name does not resolve") from exc
    if not addresses:
        raise UrlRefused("the host name does not resolve")
    if not allow_private and not all(is_public(a) for a in addresses):
        raise UrlRefused("the URL points to a loopback, private or otherwise non-public address")
    return Target(url=url, scheme=scheme, host=host, port=port, address=addresses[0])
