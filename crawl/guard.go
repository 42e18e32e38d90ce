package crawl

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// ErrBlockedAddress is returned when the SSRF guard refuses to connect.
var ErrBlockedAddress = errors.New("crawl: address blocked")

var blockedPrefixes = mustPrefixes(
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
	"192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
	"203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
	"::/128", "::1/128", "64:ff9b::/96", "100::/64", "2001:db8::/32", "fc00::/7", "fe80::/10", "ff00::/8",
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// Guard decides at dial time, on the resolved address, whether the crawler may connect. Checking
// in the dialer catches redirects and DNS rebinding too.
type Guard struct {
	// AllowPrivate turns the guard off (TRAWL_ALLOW_PRIVATE_NETWORKS).
	AllowPrivate bool
	// Ports are the allowed destination ports; empty means 80 and 443.
	Ports []int
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
	ip = ip.Unmap() // IPv4-mapped IPv6 forms are judged as IPv4
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return fmt.Errorf("%w: %s is in %s", ErrBlockedAddress, ip, p)
		}
	}
	ports := g.Ports
	if len(ports) == 0 {
		ports = []int{80, 443}
	}
	var port int
	_, _ = fmt.Sscanf(portStr, "%d", &port)
	for _, p := range ports {
		if p == port {
			return nil
		}
	}
	return fmt.Errorf("%w: port %s is not allowed", ErrBlockedAddress, portStr)
}

// Control is a net.Dialer Control function enforcing the guard.
func (g Guard) Control(_, address string, _ syscall.RawConn) error { return g.Check(address) }
