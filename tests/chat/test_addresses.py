"""Which address a connection comes from (X-Forwarded-For) and which origins may open /ws."""

from __future__ import annotations

import pytest

from logwarden.chat.addresses import OriginPolicy, TrustedProxies
from logwarden.errors import ConfigError

CLIENT = "192.0.2.10"
OTHER_CLIENT = "192.0.2.20"
PROXY = "192.0.2.1"
INNER_PROXY = "192.0.2.2"


class TestUntrustedPeer:
    def test_header_is_ignored(self) -> None:
        """A peer that is not a trusted proxy is the client, whatever its header says."""
        proxies = TrustedProxies([PROXY])
        assert proxies.client_address(OTHER_CLIENT, CLIENT) == OTHER_CLIENT

    def test_no_proxies_configured(self) -> None:
        """With no trusted proxies, the header is never believed."""
        proxies = TrustedProxies([])
        assert proxies.client_address(PROXY, CLIENT) == PROXY

    def test_peer_that_is_not_an_address(self) -> None:
        """A peer that is not an IP address is not trusted, and is returned as is."""
        proxies = TrustedProxies([PROXY])
        assert proxies.client_address("testclient", CLIENT) == "testclient"


class TestTrustedPeer:
    def test_single_hop(self) -> None:
        """Behind a trusted proxy, the address in X-Forwarded-For is the client."""
        proxies = TrustedProxies([PROXY])
        assert proxies.client_address(PROXY, CLIENT) == CLIENT

    def test_no_header(self) -> None:
        """A trusted proxy that sends no header is itself the client."""
        proxies = TrustedProxies([PROXY])
        assert proxies.client_address(PROXY, None) == PROXY

    def test_empty_header(self) -> None:
        """An empty X-Forwarded-For is the same as none."""
        proxies = TrustedProxies([PROXY])
        assert proxies.client_address(PROXY, "") == PROXY

    def test_blank_header(self) -> None:
        """A header of only whitespace names no client, so the proxy is all we know."""
        proxies = TrustedProxies([PROXY])
        assert proxies.client_address(PROXY, "   ") == PROXY

    def test_rightmost_untrusted_hop_wins(self) -> None:
        """Entries left of the right-most untrusted hop were written by the client: ignored."""
        proxies = TrustedProxies([PROXY])
        header = f"198.51.100.7, 203.0.113.9, {CLIENT}"
        assert proxies.client_address(PROXY, header) == CLIENT

    def test_chain_of_trusted_proxies_is_skipped(self) -> None:
        """Hops that are themselves trusted proxies are skipped, right to left."""
        proxies = TrustedProxies([PROXY, INNER_PROXY])
        header = f"203.0.113.9, {CLIENT}, {INNER_PROXY}"
        assert proxies.client_address(PROXY, header) == CLIENT

    def test_only_trusted_hops(self) -> None:
        """A header naming only trusted proxies leaves the peer as the client."""
        proxies = TrustedProxies([PROXY, INNER_PROXY])
        assert proxies.client_address(PROXY, f"{INNER_PROXY}, {PROXY}") == PROXY

    def test_whitespace_around_hops(self) -> None:
        """Spaces around the commas do not matter."""
        proxies = TrustedProxies([PROXY, INNER_PROXY])
        assert proxies.client_address(PROXY, f"  {CLIENT}  ,{INNER_PROXY}   ") == CLIENT

    @pytest.mark.parametrize(
        "header",
        [
            "unknown",
            "not-an-ip",
            f"{CLIENT}, garbage",
            f"{CLIENT},",
            "192.0.2.300",
            "192.0.2.10:4711",
            "[2001:db8::1]",
            "[2001:db8::1]:443",
        ],
    )
    def test_garbage_in_the_trusted_part_gives_the_peer(self, header: str) -> None:
        """A malformed entry where a trusted proxy should have written an address gives the peer."""
        proxies = TrustedProxies([PROXY])
        assert proxies.client_address(PROXY, header) == PROXY

    def test_garbage_left_of_the_client_is_never_read(self) -> None:
        """Whatever the client put in front of its real address is not looked at."""
        proxies = TrustedProxies([PROXY])
        assert proxies.client_address(PROXY, f"<script>, {CLIENT}") == CLIENT

    def test_result_is_a_normalised_address(self) -> None:
        """The client address comes back in canonical form."""
        proxies = TrustedProxies([PROXY])
        assert proxies.client_address(PROXY, "2001:DB8:0:0:0:0:0:1") == "2001:db8::1"


class TestNetworks:
    def test_cidr_network_is_trusted(self) -> None:
        """Every address in a configured CIDR network is a trusted proxy."""
        proxies = TrustedProxies(["198.51.100.0/24"])
        assert proxies.client_address("198.51.100.3", CLIENT) == CLIENT
        assert proxies.client_address("203.0.113.1", CLIENT) == "203.0.113.1"

    def test_chain_within_a_network(self) -> None:
        """Hops inside a trusted network are skipped like single trusted addresses."""
        proxies = TrustedProxies(["198.51.100.0/24"])
        header = f"{OTHER_CLIENT}, {CLIENT}, 198.51.100.9, 198.51.100.2"
        assert proxies.client_address("198.51.100.1", header) == CLIENT

    def test_host_bits_are_allowed(self) -> None:
        """A network written with host bits set (198.51.100.7/24) is taken as its network."""
        proxies = TrustedProxies(["198.51.100.7/24"])
        assert proxies.client_address("198.51.100.200", CLIENT) == CLIENT

    def test_ipv6_documentation_network(self) -> None:
        """All of 2001:db8::/32 can be trusted: its proxies pass on the client's address."""
        proxies = TrustedProxies(["2001:db8::/32"])
        assert proxies.client_address("2001:db8:ffff::1", CLIENT) == CLIENT
        assert proxies.client_address("2001:db8::1", f"{CLIENT}, 2001:db8:1::5") == CLIENT

    def test_ipv6_network_boundary(self) -> None:
        """An IPv6 peer outside the trusted prefix is the client; IPv6 clients are returned."""
        proxies = TrustedProxies(["2001:db8:1::/48"])
        assert proxies.client_address("2001:db8:1::1", "2001:db8:2::5") == "2001:db8:2::5"
        assert proxies.client_address("2001:db8:2::1", CLIENT) == "2001:db8:2::1"

    def test_ipv6_client_behind_ipv4_proxy(self) -> None:
        """An IPv6 client address behind an IPv4 proxy is returned."""
        proxies = TrustedProxies([PROXY])
        assert proxies.client_address(PROXY, "2001:db8::42") == "2001:db8::42"

    def test_ipv6_single_address(self) -> None:
        """A single IPv6 address can be a trusted proxy."""
        proxies = TrustedProxies(["2001:db8::1"])
        assert proxies.client_address("2001:db8::1", CLIENT) == CLIENT
        assert proxies.client_address("2001:db8::2", CLIENT) == "2001:db8::2"

    def test_mixed_families(self) -> None:
        """IPv4 and IPv6 proxies can be configured together and chained."""
        proxies = TrustedProxies([PROXY, "2001:db8::/32"])
        assert proxies.client_address(PROXY, f"{CLIENT}, 2001:db8::7") == CLIENT

    @pytest.mark.parametrize(
        "entry", ["", "proxy.example", "192.0.2.0/33", "192.0.2.256", "2001:db8::/129", "*"]
    )
    def test_invalid_entry_raises_config_error(self, entry: str) -> None:
        """A configured entry that is not an address or network is a ConfigError naming it."""
        with pytest.raises(ConfigError) as info:
            TrustedProxies([PROXY, entry])
        assert repr(entry) in str(info.value)
        assert "trusted_proxies" in str(info.value)


class TestOriginPolicy:
    def test_no_origin_is_allowed(self) -> None:
        """A handshake without Origin (not a browser page) is allowed."""
        assert OriginPolicy([]).allows(None, "chat.example")
        assert OriginPolicy([]).allows(None, None)

    @pytest.mark.parametrize("scheme", ["http", "https"])
    @pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[2001:db8::1]:8000"])
    def test_same_host_is_allowed(self, scheme: str, host: str) -> None:
        """The page's own address is allowed over http and https (TLS may end at a proxy)."""
        assert OriginPolicy([]).allows(f"{scheme}://{host}", host)

    def test_same_host_name_is_not_enough(self) -> None:
        """A host name matching its own Origin is refused unless configured (DNS rebinding)."""
        assert not OriginPolicy([]).allows("https://rebind.example", "rebind.example")
        assert OriginPolicy(["https://chat.example"]).allows("https://chat.example", "chat.example")

    def test_same_host_and_port(self) -> None:
        """A host with a port must match the Host header's port."""
        policy = OriginPolicy([])
        assert policy.allows("http://127.0.0.1:8000", "127.0.0.1:8000")
        assert not policy.allows("http://127.0.0.1:9000", "127.0.0.1:8000")

    def test_same_host_ignores_case(self) -> None:
        """Host names are compared without regard to case."""
        assert OriginPolicy([]).allows("HTTPS://LocalHost:8000", "LOCALHOST:8000")

    @pytest.mark.parametrize(
        "origin",
        [
            "https://evil.example",
            "https://chat.example.evil.example",
            "https://evilchat.example",
            "https://user@chat.example.evil.example",
        ],
    )
    def test_other_host_is_refused(self, origin: str) -> None:
        """An origin on another host is refused."""
        assert not OriginPolicy([]).allows(origin, "chat.example")

    def test_null_origin_is_refused(self) -> None:
        """The opaque origin "null" (sandboxed frames, file: pages) is refused."""
        assert not OriginPolicy([]).allows("null", "chat.example")
        assert not OriginPolicy([]).allows("null", "null")

    def test_missing_host_refuses_unknown_origins(self) -> None:
        """Without a Host header, only configured origins are allowed."""
        policy = OriginPolicy(["https://partner.example"])
        assert not policy.allows("https://chat.example", None)
        assert policy.allows("https://partner.example", None)

    @pytest.mark.parametrize(
        "origin",
        ["https://partner.example", "https://partner.example/", "HTTPS://PARTNER.EXAMPLE"],
    )
    def test_configured_origin_is_allowed(self, origin: str) -> None:
        """A configured origin is allowed, whatever its case or trailing slash."""
        policy = OriginPolicy(["https://Partner.example/"])
        assert policy.allows(origin, "chat.example")

    def test_configured_origin_scheme_matters(self) -> None:
        """A configured https origin does not allow the same host over http."""
        policy = OriginPolicy(["https://partner.example"])
        assert not policy.allows("http://partner.example", "chat.example")

    @pytest.mark.parametrize(
        "origin",
        [
            "ws://chat.example",
            "wss://chat.example",
            "file://chat.example",
            "ftp://chat.example",
            "chrome-extension://chat.example",
            "chat.example",
            "//chat.example",
        ],
    )
    def test_non_http_schemes_are_refused(self, origin: str) -> None:
        """An origin on the page's host but with a non-http scheme is refused."""
        assert not OriginPolicy([]).allows(origin, "chat.example")
