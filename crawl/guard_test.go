package crawl

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

func TestGuardCheck(t *testing.T) {
	t.Parallel()
	blocked := []string{
		"127.0.0.1:80", "127.1.2.3:443", // loopback
		"10.0.0.1:80", "172.16.0.1:80", "172.31.255.255:443", "192.168.1.1:80", // RFC 1918
		"169.254.169.254:80", "169.254.0.1:443", // link-local, cloud metadata
		"100.64.0.1:80", "100.127.255.254:443", // CGNAT
		"0.0.0.0:80", "0.1.2.3:443", // this network
		"224.0.0.1:80", "255.255.255.255:80", "240.0.0.1:80", // multicast, broadcast, reserved
		"192.0.2.1:80", "198.18.0.1:80", // documentation, benchmarking
		"[::1]:80", "[::]:80", // IPv6 loopback and unspecified
		"[fc00::1]:80", "[fd12:3456::1]:443", // unique local
		"[fe80::1]:80",                                   // link-local
		"[ff02::1]:80",                                   // multicast
		"[::ffff:127.0.0.1]:80", "[::ffff:10.1.2.3]:443", // IPv4-mapped
		"[::ffff:169.254.169.254]:80", "[::ffff:100.64.0.1]:80", // IPv4-mapped
		"[::ffff:192.168.0.1]:80", "[::ffff:0.0.0.0]:80", "[::ffff:7f00:1]:80", // IPv4-mapped, hex form
		"[64:ff9b::7f00:1]:80",                                      // NAT64 of 127.0.0.1
		"93.184.216.34:8080", "93.184.216.34:22", "93.184.216.34:0", // ports
		"example.com:80", // not an IP: the dialer always passes resolved addresses
		"93.184.216.34",  // no port
		"",
	}
	allowed := []string{"93.184.216.34:80", "93.184.216.34:443", "8.8.8.8:443", "[2606:4700::1111]:443", "[2a00:1450:4001::200e]:80",
		"[64:ff9b::5db8:d822]:443", // NAT64 of a public address
		"[2002:5db8:d822::1]:80",   // 6to4 of a public address
		"[::ffff:93.184.216.34]:80",
	}
	var g Guard
	for _, a := range blocked {
		if err := g.Check(a); !errors.Is(err, ErrBlockedAddress) {
			t.Errorf("Check(%q) = %v, want ErrBlockedAddress", a, err)
		}
	}
	for _, a := range allowed {
		if err := g.Check(a); err != nil {
			t.Errorf("Check(%q) = %v, want allowed", a, err)
		}
	}
	open := Guard{AllowPrivate: true}
	for _, a := range append(blocked[:len(blocked):len(blocked)], allowed...) {
		if err := open.Check(a); err != nil {
			t.Errorf("AllowPrivate: Check(%q) = %v, want allowed", a, err)
		}
	}
	exception := Guard{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24")}}
	if err := exception.Check("10.1.2.3:443"); err != nil {
		t.Errorf("Allow 10.1.2.0/24: Check(10.1.2.3:443) = %v, want allowed", err)
	}
	for _, a := range []string{"10.1.3.1:443", "10.1.2.3:8080", "127.0.0.1:80"} {
		if err := exception.Check(a); !errors.Is(err, ErrBlockedAddress) {
			t.Errorf("Allow 10.1.2.0/24: Check(%q) = %v, want blocked", a, err)
		}
	}
	ports := Guard{Ports: []int{8080}}
	if err := ports.Check("93.184.216.34:8080"); err != nil {
		t.Errorf("Ports [8080]: Check(:8080) = %v, want allowed", err)
	}
	for _, a := range []string{"93.184.216.34:80", "127.0.0.1:8080"} {
		if err := ports.Check(a); !errors.Is(err, ErrBlockedAddress) {
			t.Errorf("Ports [8080]: Check(%q) = %v, want blocked", a, err)
		}
	}
}

// TestGuardBlocksFetch checks the guard where it matters: in the dialer, on the resolved
// address. A host name that resolves to loopback is refused just like the literal address,
// and the server never sees a request.
func TestGuardBlocksFetch(t *testing.T) {
	t.Parallel()
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("secret")) })
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	// The port is allowed, so only the address can be the reason for the refusal.
	f := testFetcher(t, FetchConfig{Guard: Guard{Ports: []int{p}}})
	for _, u := range []string{
		srv.URL + "/",
		"http://localhost:" + port + "/",
		"http://[::ffff:127.0.0.1]:" + port + "/",
	} {
		res := f.Fetch(testJob(u), "w")
		if res.Status != 0 || res.ErrorClass != "blocked" || !res.Permanent || res.Error == "" {
			t.Errorf("%s: status %d class %q permanent %t error %q, want a permanent blocked error", u, res.Status, res.ErrorClass, res.Permanent, res.Error)
		}
	}
	if n := len(srv.Paths()); n != 0 {
		t.Errorf("the guarded fetcher reached the server %d times", n)
	}

	open := testFetcher(t, FetchConfig{Guard: Guard{AllowPrivate: true}})
	if res := open.Fetch(testJob(srv.URL+"/"), "w"); res.Status != 200 || res.Error != "" {
		t.Errorf("AllowPrivate: status %d error %q, want 200", res.Status, res.Error)
	}
}

// TestGuardCatchesRedirectToPrivate: a page on an allowed address redirects to the cloud
// metadata address and to another loopback address. The redirect is recorded as a link (the
// fetcher follows none); fetching that link is refused by the dialer with a clear, permanent
// error.
func TestGuardCatchesRedirectToPrivate(t *testing.T) {
	t.Parallel()
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "/loopback":
			_, port, _ := net.SplitHostPort(r.Host)
			http.Redirect(w, r, "http://127.0.0.2:"+port+"/admin", http.StatusFound)
		}
	})
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	f := testFetcher(t, FetchConfig{Guard: Guard{Ports: []int{80, p}, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}})
	for path, target := range map[string]string{
		"/metadata": "http://169.254.169.254/latest/meta-data/",
		"/loopback": "http://127.0.0.2:" + port + "/admin",
	} {
		res := f.Fetch(testJob(srv.URL+path), "w")
		if res.Status != http.StatusFound || len(res.Links) != 1 || res.Links[0] != target {
			t.Fatalf("%s: status %d links %q error %q, want a 302 to %s", path, res.Status, res.Links, res.Error, target)
		}
		res = f.Fetch(testJob(target), "w")
		if res.ErrorClass != "blocked" || !res.Permanent || !strings.Contains(res.Error, "address blocked") {
			t.Errorf("%s: class %q permanent %t error %q, want a permanent blocked error", target, res.ErrorClass, res.Permanent, res.Error)
		}
	}
	if n := len(srv.Paths()); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
}

// noDNS is a resolver that never sends a query: a test that must not look a name up (and must
// never send traffic off the machine) fails with its error instead.
var noDNS = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("test: no DNS queries")
}}

// TestGuardSeesNumericIPv4Hosts: a host that ends in a number is an IPv4 address however it is
// written (the URL Standard's IPv4 parser), so the fetcher dials that address and the guard
// judges it, without a DNS lookup for "0x7f000001": every spelling of a loopback address is
// refused like 127.0.0.1, and so is a redirect to one (robots.txt follows redirects). With the
// guard off the same spellings reach the server.
func TestGuardSeesNumericIPv4Hosts(t *testing.T) {
	t.Parallel()
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			_, port, _ := net.SplitHostPort(r.Host)
			http.Redirect(w, r, "http://0x7f000002:"+port+"/robots.txt", http.StatusFound)
			return
		}
		_, _ = w.Write([]byte("secret"))
	})
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	loopback := []string{"0x7f000001", "0X7F000001", "2130706433", "017700000001", "0177.1", "127.1", "0x7f.0.0.1", "127.0.0.1."}
	f := testFetcher(t, FetchConfig{Guard: Guard{Ports: []int{p}}, resolver: noDNS})
	for _, h := range loopback {
		u := "http://" + h + ":" + port + "/"
		res := f.Fetch(testJob(u), "w")
		if res.ErrorClass != "blocked" || !res.Permanent || !strings.Contains(res.Error, "127.0.0.1 is in 127.0.0.0/8") {
			t.Errorf("%s: status %d class %q permanent %t error %q, want 127.0.0.1 blocked", u, res.Status, res.ErrorClass, res.Permanent, res.Error)
		}
	}
	// robots.txt on an allowed address redirects to 0x7f000002, which is 127.0.0.2: refused.
	allowOne := testFetcher(t, FetchConfig{Guard: Guard{Ports: []int{p}, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}, resolver: noDNS})
	rf := allowOne.FetchRobots(t.Context(), srv.URL+"/robots.txt")
	if rf.Status != 0 || rf.ErrorClass != "blocked" || !strings.Contains(rf.Error, "127.0.0.2 is in 127.0.0.0/8") {
		t.Errorf("robots.txt redirected to 0x7f000002: status %d class %q error %q, want 127.0.0.2 blocked", rf.Status, rf.ErrorClass, rf.Error)
	}
	if got := srv.Paths(); len(got) != 1 || got[0] != "/robots.txt" {
		t.Errorf("the guarded fetchers reached the server for %q, want only the first robots.txt", got)
	}

	open := testFetcher(t, FetchConfig{Guard: Guard{AllowPrivate: true}, resolver: noDNS})
	for _, h := range loopback {
		u := "http://" + h + ":" + port + "/page"
		if res := open.Fetch(testJob(u), "w"); res.Status != 200 || res.Error != "" {
			t.Errorf("AllowPrivate %s: status %d error %q, want 200", u, res.Status, res.Error)
		}
	}
}
