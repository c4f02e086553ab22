"""The client's address behind reverse proxies: ``Forwarded`` (RFC 7239) and ``X-Forwarded-For``.

Only a TCP peer inside a trusted range (``--trusted-proxy CIDR``) may tell us who the client
is; any other peer's forwarding headers are ignored (a client could write anything there).
For a trusted peer the hops are read right to left (each proxy appends the address it saw,
RFC 7239 section 5.2 / the de-facto ``X-Forwarded-For`` rule) and the **rightmost hop that
is not itself a trusted proxy** is the client. If every hop is trusted, the leftmost is used.
A hop we cannot read (``unknown``, an obfuscated ``_name``, garbage) stops the walk: the
client is then the last address a trusted proxy vouched for (the hop to its right, or the
peer itself).

``Forwarded`` wins when present (all its header lines, in order, as one list); otherwise
``X-Forwarded-For``. At most :data:`MAX_HOPS` hops are read from the right: the request head
is bounded (16 KiB) and so is this work.

Addresses are normalized: an IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, what a
dual-stack socket reports) becomes its IPv4 form; ports and brackets are dropped.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence

from protocol.handshake import Headers

__all__ = ["MAX_HOPS", "IPAddress", "TrustedProxies", "forwarded_for", "normalize_ip",
           "parse_forwarded", "parse_networks", "x_forwarded_for"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Hops read from the right of a forwarding chain.
MAX_HOPS = 32


def parse_networks(specs: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "::1", ...]`` -> networks (a bare address is a /32 or /128).

    Raises ``ValueError`` naming the bad entry.
    """
    out: list[Network] = []
    for spec in specs:
        try:
            out.append(ipaddress.ip_network(spec.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or CIDR range: {spec!r}") from None
    return tuple(out)


def normalize_ip(value: str | IPAddress) -> IPAddress | None:
    """Parse one address (no port); IPv4-mapped IPv6 -> IPv4; ``None`` if not an address."""
    if isinstance(value, str):
        return _parse_ip(value.strip())
    return _normalized(value)


@functools.lru_cache(maxsize=4096)
def _parse_ip(text: str) -> IPAddress | None:
    # Cached: ipaddress parsing costs several microseconds, and the same addresses (our
    # proxies, returning players) come again and again. Bounded; the values are immutable.
    try:
        return _normalized(ipaddress.ip_address(text))
    except ValueError:
        return None


def _normalized(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.scope_id:
            return ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    return ip


def _node_address(node: str) -> IPAddress | None:
    """A forwarding hop (``1.2.3.4``, ``1.2.3.4:80``, ``[2001:db8::1]:80``, ``2001:db8::1``)."""
    node = node.strip()
    if node.startswith("["):
        end = node.find("]")
        if end < 0:
            return None
        rest = node[end + 1:]
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return None
        return normalize_ip(node[1:end])
    if node.count(":") == 1:  # IPv4 with a port
        host, port = node.split(":")
        if not port.isdigit():
            return None
        ip = normalize_ip(host)
        return ip if isinstance(ip, ipaddress.IPv4Address) else None
    return normalize_ip(node)


def _split_quoted(text: str, seps: str) -> list[str]:
    """Split on any char of ``seps`` outside RFC 7230 quoted-strings (quotes kept)."""
    parts: list[str] = []
    cur: list[str] = []
    quoted = escaped = False
    for ch in text:
        if escaped:
            cur.append(ch)
            escaped = False
        elif quoted and ch == "\\":
            cur.append(ch)
            escaped = True
        elif ch == '"':
            cur.append(ch)
            quoted = not quoted
        elif not quoted and ch in seps:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner = value[1:-1]
        out: list[str] = []
        it = iter(inner)
        for ch in it:  # quoted-pair: backslash escapes the next character (RFC 7230 3.2.6)
            out.append(next(it, "") if ch == "\\" else ch)
        return "".join(out)
    return value


def parse_forwarded(values: Sequence[str]) -> list[str | None]:
    """The ``for=`` node of each element of ``Forwarded`` header values, left to right.

    ``None`` for an element without ``for=``. Parameter names are case-insensitive
    (RFC 7239 section 4); values may be tokens or quoted-strings.
    """
    out: list[str | None] = []
    for header in values:
        for element in _split_quoted(header, ","):
            if not element.strip():
                continue
            node: str | None = None
            for pair in _split_quoted(element, ";"):
                name, eq, value = pair.partition("=")
                if eq and name.strip().lower() == "for":
                    node = _unquote(value)
            out.append(node)
    return out


def x_forwarded_for(values: Sequence[str]) -> list[str | None]:
    """The hops of ``X-Forwarded-For`` header values (comma-separated), left to right."""
    hops: list[str | None] = [h.strip() for v in values for h in v.split(",") if h.strip()]
    return hops


class TrustedProxies:
    """The trusted-proxy ranges and the client-address rule of the module docstring."""

    def __init__(self, specs: Iterable[str] = ()) -> None:
        self.networks = parse_networks(specs)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusted(self, ip: IPAddress) -> bool:
        return any(ip in net for net in self.networks)

    def client_ip(self, peer: str | IPAddress | None, headers: Headers) -> IPAddress | None:
        """The client's address for a request from TCP ``peer`` (None if unknown)."""
        ip = normalize_ip(peer) if peer is not None else None
        if ip is None or not self.networks or not self.trusted(ip):
            return ip
        hops = forwarded_for(headers)
        for node in reversed(hops[-MAX_HOPS:]):
            hop = _node_address(node) if node is not None else None
            if hop is None:
                return ip  # unreadable hop: the last address a trusted proxy vouched for
            ip = hop
            if not self.trusted(hop):
                return hop
        return ip


def forwarded_for(headers: Headers) -> list[str | None]:
    """The forwarding chain of a request: ``Forwarded`` if present, else X-Forwarded-For."""
    fwd = headers.get_all("Forwarded")
    if fwd:
        return parse_forwarded(fwd)
    return x_forwarded_for(headers.get_all("X-Forwarded-For"))
