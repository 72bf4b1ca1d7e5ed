"""Which addresses a webhook may be sent to: the target policy, pure (no I/O).

Always refused, whatever the settings: link-local addresses (169.254.0.0/16, among them the
cloud metadata address 169.254.169.254, and fe80::/10), the metadata services outside it
(fd00:ec2::254, 100.100.100.200), unspecified ones (0.0.0.0/8, ``::``), multicast, broadcast
and reserved ranges. Refused too unless private targets are allowed
(``KUDOS_WEBHOOK_ALLOW_PRIVATE``): loopback, private ranges (RFC 1918, fc00::/7), CGNAT
(100.64.0.0/10) and every other address that is not globally routable, and host names that
only make sense inside a network (``localhost``, ``*.local``, a name without a dot, …).

IPv6 forms that carry an IPv4 address (mapped ``::ffff:a.b.c.d``, compatible ``::a.b.c.d``,
NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) are judged by that IPv4 address, and the numeric
spellings the system resolver accepts (``2852039166``, ``0xA9FEA9FE``,
``0251.0376.0251.0376``, ``127.1``) are read as the address they stand for.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from ipaddress import IPv4Address, IPv6Address

Address = IPv4Address | IPv6Address

# What the delivery log says about an attempt to a refused address (never which rule).
REFUSED = "target address not allowed"

_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
# Cloud metadata services outside the link-local range, refused always like 169.254.169.254:
# AWS's IPv6 one (fd00:ec2::254) and Alibaba Cloud's (100.100.100.200).
_METADATA = frozenset(ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200"))
# Not globally routable, though this Python's ``is_global`` says otherwise for some of them
# (checked explicitly): IETF protocol assignments, deprecated site-local IPv6, and the
# documentation, benchmarking and other special-purpose ranges of RFC 6890 and its updates.
_NOT_GLOBAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "192.0.0.0/24",
        "192.0.2.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "fec0::/10",
        "2001::/23",
        "2001:db8::/32",
        "100::/64",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPATIBLE = ipaddress.ip_network("::/96")
# Names that resolve inside the host or its network only (RFC 6761, 6762, 8375; ICANN's
# .internal), refused with private addresses.
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")
# The characters of an IPv4 address in any spelling ``inet_aton`` accepts (decimal, octal,
# hexadecimal, one to four parts).
_NUMERIC = re.compile(r"[0-9a-fA-FxX.]+")


def literal(host: str) -> Address | None:
    """The address ``host`` spells, in any form the system resolver reads as an address
    without asking DNS; ``None`` for a host name."""
    text = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if not _NUMERIC.fullmatch(text) or not any(ch.isdigit() for ch in text):
        return None
    try:  # ``2852039166``, ``0xA9FEA9FE``, ``0251.0376.0251.0376``, ``127.1``
        return IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


def allowed(address: Address, *, allow_private: bool) -> bool:
    """Whether a webhook may be sent to ``address``."""
    if isinstance(address, IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return allowed(embedded, allow_private=allow_private)
    if _always_refused(address):
        return False
    return allow_private or _global(address)


def _global(address: Address) -> bool:
    """Whether ``address`` is globally routable (``is_global``, and none of ``_NOT_GLOBAL``)."""
    if not address.is_global:
        return False
    return not any(
        address in network for network in _NOT_GLOBAL if network.version == address.version
    )


def name_allowed(host: str, *, allow_private: bool) -> bool:
    """Whether a host name (not an address) may be a target before it is even resolved:
    names that only resolve inside a network are refused with private addresses."""
    if allow_private:
        return True
    name = host.lower().rstrip(".")
    local = name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES)
    return not local and "." in name  # a single label resolves through search domains


def all_allowed(addresses: list[str], *, allow_private: bool) -> bool:
    """Whether every resolved address is allowed (one refused address refuses the name, so
    that a name cannot mix a public address with an internal one)."""
    for text in addresses:
        address = literal(text.split("%", 1)[0])
        if address is None or not allowed(address, allow_private=allow_private):
            return False
    return True


def _always_refused(address: Address) -> bool:
    if address.is_unspecified or address.is_link_local or address.is_multicast:
        return True
    if address in _METADATA:
        return True
    if isinstance(address, IPv4Address):
        return address in _THIS_NETWORK or address.is_reserved  # 240/4 and the broadcast
    return address.is_reserved and not address.is_loopback  # ::1 lies in the reserved ::/8


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address carries and would reach, if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _COMPATIBLE and int(address) > 1):
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None
