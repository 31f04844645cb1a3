package egress

import (
	"fmt"
	"net/netip"
	"slices"
)

// blocked lists the address ranges a step may not dial unless its
// allow.private names them: everything that is not a public unicast
// address. Taken as data from IANA's special-purpose address registries
// (https://www.iana.org/assignments/iana-ipv4-special-registry,
// https://www.iana.org/assignments/iana-ipv6-special-registry) and RFC 6890,
// plus the ranges that embed an IPv4 address (NAT64, 6to4, Teredo), which
// could carry a blocked one past a check on IPv6 alone.
var blocked = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this network"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (CGNAT)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (cloud metadata)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (and broadcast)"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible (deprecated)"},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64 (embeds IPv4)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001::/32"), "Teredo (embeds IPv4)"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("2002::/16"), "6to4 (embeds IPv4)"},
	{netip.MustParsePrefix("fc00::/7"), "unique local (AWS metadata fd00:ec2::254)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// metadata are the cloud metadata services' addresses. allow.private
// grants one only by naming it exactly (a /32 or /128), never through a
// wider range that happens to hold it.
var metadata = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"), // AWS, GCP, Azure, OpenStack …
	netip.MustParseAddr("169.254.170.2"),   // AWS ECS task metadata
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
	netip.MustParseAddr("fd00:ec2::254"),   // AWS over IPv6
}

// blockedRange says what kind of non-public address a is, or "" when the
// step may dial it: a public address, or one a prefix of private covers. An
// IPv4-mapped IPv6 address (::ffff:127.0.0.1) is checked as the IPv4
// address it is.
func blockedRange(a netip.Addr, private []netip.Prefix) string {
	a = a.Unmap().WithZone("")
	meta := slices.Contains(metadata, a)
	for _, p := range private {
		if p.Contains(a) && (!meta || p.Bits() == a.BitLen()) {
			return ""
		}
	}
	if meta {
		return "cloud metadata"
	}
	for _, b := range blocked {
		if b.prefix.Contains(a) {
			return b.what
		}
	}
	return ""
}

// checkAddr refuses an address blockedRange names, saying how to grant it.
func checkAddr(a netip.Addr, private []netip.Prefix) error {
	what := blockedRange(a, private)
	switch {
	case what == "":
		return nil
	case what == "cloud metadata":
		return fmt.Errorf("%s is a cloud metadata address (allow.private must name it exactly)", a.Unmap())
	}
	return fmt.Errorf("%s is a %s address (allow.private can grant it)", a.Unmap(), what)
}
