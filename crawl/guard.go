package crawl

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"

	"github.com/trawlhq/trawl/crawlurl"
)

// ErrBlockedAddress is returned when the SSRF guard refuses to connect.
var ErrBlockedAddress = errors.New("crawl: address blocked")

var blockedPrefixes = mustPrefixes(
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
	"192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
	"203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
	"::/96",                                  // unspecified, loopback and the deprecated IPv4-compatible addresses
	"64:ff9b:1::/48",                         // local-use NAT64, whose embedding of IPv4 is not fixed
	"100::/64", "2001::/32", "2001:db8::/32", // discard, Teredo, documentation
	"fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8", // unique local, link-local, site-local, multicast
)

// IPv6 prefixes whose addresses embed an IPv4 address, and are judged by that address: 6to4
// (2002::/16, in bits 16-47) and the well-known NAT64 prefix (64:ff9b::/96, in the last 32
// bits), which reaches any IPv4 address behind the gateway.
var (
	sixToFour = netip.MustParsePrefix("2002::/16")
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// Guard decides at dial time, on the resolved address, whether the crawler may connect. Checking
// in the dialer catches redirects and DNS rebinding too: whatever name or redirect led there,
// the address actually dialed is the one judged, and every address a name resolves to is
// judged separately. A host that ends in a number ("0x7f000001", "127.1") is dialled as the
// IPv4 address the URL Standard reads it as, never looked up, so that is the address judged.
//
// Refused: loopback, RFC 1918, link-local (169.254.169.254 included), CGNAT 100.64/10,
// 0.0.0.0/8, multicast, broadcast, reserved and documentation ranges, IPv6 unique-local,
// link-local, site-local and multicast, and the IPv6 forms that embed or reach an IPv4
// address (IPv4-mapped, IPv4-compatible, NAT64 and 6to4 of a refused address, Teredo); and every
// port not in Ports.
type Guard struct {
	// AllowPrivate turns the guard off (TRAWL_ALLOW_PRIVATE_NETWORKS).
	AllowPrivate bool
	// Ports are the allowed destination ports; empty means 80 and 443.
	Ports []int
	// Allow lists exceptions: addresses in these prefixes are allowed although private (for
	// example one intranet host). The port rule still applies.
	Allow []netip.Prefix
}

// Check returns ErrBlockedAddress (wrapped) for a refused "ip:port".
func (g Guard) Check(address string) error {
	if g.AllowPrivate {
		return nil
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q: %v", ErrBlockedAddress, address, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: %q is not an IP address", ErrBlockedAddress, host)
	}
	ip = ip.WithZone("").Unmap() // a zone would make Prefix.Contains false; mapped forms are IPv4
	if err := g.checkAddr(ip); err != nil {
		return err
	}
	ports := g.Ports
	if len(ports) == 0 {
		ports = []int{80, 443}
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("%w: bad port %q", ErrBlockedAddress, portStr)
	}
	for _, p := range ports {
		if p == port {
			return nil
		}
	}
	return fmt.Errorf("%w: port %s is not allowed", ErrBlockedAddress, portStr)
}

func (g Guard) checkAddr(ip netip.Addr) error {
	for _, p := range g.Allow {
		if p.Contains(ip) {
			return nil
		}
	}
	if sixToFour.Contains(ip) || nat64.Contains(ip) {
		b := ip.As16()
		v4 := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		if sixToFour.Contains(ip) {
			v4 = netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
		}
		if err := g.checkAddr(v4); err != nil {
			return fmt.Errorf("%w (embedded in %s)", err, ip)
		}
		return nil
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return fmt.Errorf("%w: %s is in %s", ErrBlockedAddress, ip, p)
		}
	}
	return nil
}

// numericAddress rewrites "host:port" whose host ends in a number, which the URL Standard reads
// as an IPv4 address however it is written ("0x7f000001", "2130706433", "0177.1", "127.1"), to
// that address in dotted decimal, as browsers would connect to it. The dialer then connects to
// the address itself rather than asking DNS about a name that is no name, so the guard judges
// the address a browser would reach (127.0.0.1, refused) whatever the resolver would have made
// of it. A host that ends in a number but is no valid address ("1.2.3.4.5") is an error naming
// an invalid URL. Links are canonicalised before they are fetched, so this matters for URLs
// that reach the dialer otherwise: redirects followed for robots.txt and sitemaps.
func numericAddress(address string) (string, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return address, nil // the dialer reports it
	}
	addr, isIPv4, err := crawlurl.ParseIPv4Host(host)
	if !isIPv4 {
		return address, nil
	}
	if err != nil {
		return "", fmt.Errorf("crawl: dial %q: %w", address, err)
	}
	return net.JoinHostPort(addr.String(), port), nil
}

// Control is a net.Dialer Control function enforcing the guard.
func (g Guard) Control(_, address string, _ syscall.RawConn) error { return g.Check(address) }
