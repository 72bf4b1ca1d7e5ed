"""The target policy, pure: which addresses and host names a webhook may be sent to."""

from __future__ import annotations

import socket
from ipaddress import ip_address

import pytest

from kudos.webhooks import targets

ALWAYS_REFUSED = [
    "169.254.169.254",  # the cloud metadata address (link-local)
    "169.254.0.1",
    "fe80::1",
    "0.0.0.0",
    "0.1.2.3",
    "::",
    "224.0.0.1",
    "ff02::1",  # multicast, though Python calls it global
    "255.255.255.255",
    "240.0.0.1",
    "::ffff:169.254.169.254",  # IPv4-mapped
    "::169.254.169.254",  # IPv4-compatible
    "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata address
    "2002:a9fe:a9fe::1",  # 6to4 of the metadata address
    "fd00:ec2::254",  # AWS's IPv6 metadata address (inside the private fc00::/7)
    "100.100.100.200",  # Alibaba Cloud's metadata address (inside CGNAT)
]
PRIVATE = [
    "127.0.0.1",
    "127.8.9.10",
    "::1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",  # CGNAT
    "fc00::1",
    "fd12:3456::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "198.18.0.1",
    "fec0::1",  # deprecated site-local: this Python's is_global calls it global
    "192.0.0.8",  # IETF protocol assignments: is_global calls it global
    "192.0.2.1",  # documentation
    "2001:db8::1",
]
PUBLIC = ["93.184.216.34", "2606:4700::1111", "::ffff:93.184.216.34", "64:ff9b::5db8:d822"]


@pytest.mark.parametrize("text", ALWAYS_REFUSED)
@pytest.mark.parametrize("allow_private", [True, False])
def test_link_local_unspecified_multicast_and_reserved_are_always_refused(
    text: str, allow_private: bool
) -> None:
    assert not targets.allowed(ip_address(text), allow_private=allow_private)


@pytest.mark.parametrize("text", PRIVATE)
def test_loopback_and_private_ranges_are_refused_only_when_private_is_off(text: str) -> None:
    assert targets.allowed(ip_address(text), allow_private=True)
    assert not targets.allowed(ip_address(text), allow_private=False)


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses_are_allowed(text: str) -> None:
    assert targets.allowed(ip_address(text), allow_private=False)


@pytest.mark.parametrize(
    "spelling", ["2852039166", "0xA9FEA9FE", "0251.0376.0251.0376", "0251.254.169.254"]
)
def test_every_spelling_the_resolver_reads_as_the_metadata_address_is_that_address(
    spelling: str,
) -> None:
    """What getaddrinfo makes of them on this machine, and what the policy reads."""
    resolved = {info[4][0] for info in socket.getaddrinfo(spelling, 80)}
    assert resolved == {"169.254.169.254"}
    assert targets.literal(spelling) == ip_address("169.254.169.254")
    assert targets.literal(f"[{spelling}]") == ip_address("169.254.169.254")


@pytest.mark.parametrize(
    ("host", "address"),
    [("127.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("[::1]", "::1"), ("10.0.0.1.", "10.0.0.1")],
)
def test_short_and_bracketed_spellings_are_read_as_addresses(host: str, address: str) -> None:
    assert targets.literal(host) == ip_address(address)


@pytest.mark.parametrize("host", ["example.com", "cafe.be", "deadbeef", "1e5.example", "x"])
def test_host_names_are_not_addresses(host: str) -> None:
    assert targets.literal(host) is None


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST.",
        "api.localhost",
        "localhost.localdomain",
        "ip6-localhost",
        "printer.local",
        "metadata.google.internal",
        "nas.home.arpa",
        "db",
    ],
)
def test_names_inside_a_network_are_refused_when_private_is_off(host: str) -> None:
    assert targets.name_allowed(host, allow_private=True)
    assert not targets.name_allowed(host, allow_private=False)


def test_a_name_is_refused_if_any_of_its_addresses_is() -> None:
    assert targets.all_allowed(["93.184.216.34", "2606:4700::1111"], allow_private=False)
    assert not targets.all_allowed(["93.184.216.34", "169.254.169.254"], allow_private=True)
    assert not targets.all_allowed(["93.184.216.34", "10.0.0.1"], allow_private=False)
    assert not targets.all_allowed(["fe80::1%eth0"], allow_private=True)
