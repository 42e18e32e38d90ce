package crawlurl

import (
	"errors"
	"net/netip"
	"net/url"
	"testing"
)

// checkCanonical fails t unless out, produced by c, is a canonical URL: a
// fixed point of c and of the zero Canonicalizer, within MaxURLLength,
// parsed by net/url as http or https, and with HostKey equal to the
// authority that Scope.Allows slices out.
func checkCanonical(t *testing.T, c Canonicalizer, in, out string) {
	t.Helper()
	if len(out) > MaxURLLength {
		t.Fatalf("Canonicalize(%q) = %q, longer than MaxURLLength", in, out)
	}
	again, err := c.Canonicalize(out)
	if err != nil {
		t.Fatalf("Canonicalize(%q) = %q, which fails to canonicalise: %v", in, out, err)
	}
	if again != out {
		t.Fatalf("not idempotent:\n  in:     %q\n  once:   %q\n  twice:  %q", in, out, again)
	}
	if plain, err := (Canonicalizer{}).Canonicalize(out); err != nil || plain != out {
		t.Fatalf("%q is not canonical for the zero Canonicalizer: %q, %v", out, plain, err)
	}
	u, err := url.Parse(out)
	if err != nil {
		t.Fatalf("Canonicalize(%q) = %q, which url.Parse rejects: %v", in, out, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		t.Fatalf("Canonicalize(%q) = %q, scheme %q", in, out, u.Scheme)
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		t.Fatalf("Canonicalize(%q) = %q, parsed as %#v", in, out, u)
	}
	if _, isIPv4, err := ParseIPv4Host(u.Hostname()); isIPv4 {
		// A host that ends in a number is an IPv4 address in dotted decimal.
		if addr, perr := netip.ParseAddr(u.Hostname()); err != nil || perr != nil || !addr.Is4() || addr.String() != u.Hostname() {
			t.Fatalf("Canonicalize(%q) = %q, whose host ends in a number but is not dotted decimal: %v", in, out, err)
		}
	}
	a, ok := authorityOf(out)
	if !ok || a != u.Host || HostKey(u) != u.Host {
		t.Fatalf("Canonicalize(%q) = %q: authority %q, %v; u.Host %q; HostKey %q", in, out, a, ok, u.Host, HostKey(u))
	}
}

func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{
		"HTTP://Example.COM:80/a/../b?#frag",
		"http://bücher.de/%7e/%2f/ a?b=c d&jsessionid=1",
		"https://[::FFFF:1.2.3.4]:443/x;jsessionid=9/y/..",
		"http://u:p@x.com.:0080/%zz?%&&sid=1&a=2#f",
		`http:\\x.com\a\..\b`,
		"http://ex%41mple.com/?q=%E2%82",
		"http://a.com/..;jsessionid=1/b",
		"http://0xc0.0250.01/",
		"http://192.0x00a80001:8080/",
		"http://4294967295./",
		"http://1.2.3.4.5/",
		"https://example.com%80/",
		"ftp://example.com/",
		"",
	} {
		f.Add(s, false, true)
		f.Add(s, true, false)
	}
	f.Fuzz(func(t *testing.T, raw string, sortQuery, strip bool) {
		c := Canonicalizer{SortQuery: sortQuery, StripSessionIDs: strip}
		out, err := c.Canonicalize(raw)
		if err != nil {
			if out != "" {
				t.Fatalf("Canonicalize(%q) = %q with error %v", raw, out, err)
			}
			return
		}
		checkCanonical(t, c, raw, out)
	})
}

func FuzzResolve(f *testing.F) {
	for _, s := range [][2]string{
		{"http://example.com/a/b/c?q=1#top", "../d"},
		{"http://example.com/a/b/c?q=1", "?p=2"},
		{"https://example.com/", "//other.com/x"},
		{"http://example.com/a", "#frag"},
		{"http://example.com/a", " javascript:alert(1)"},
		{"http://example.com/a", "data:text/html,x"},
		{"http://example.com", `\\evil.com\x`},
		{"http://example.com/%7e/", "./%2e%2E/ü?x=1&jsessionid=2"},
		{"http://0x7f000001/a/", "b"},
		{"http://example.com/", "//0177.1/x"},
		{"http://example.com/", "//1.2.3.4.5/"},
		{"mailto:x@example.com", "/a"},
		{"", "http://example.com/"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, rawBase, href string) {
		base, err := url.Parse(rawBase)
		if err != nil {
			base = nil
		}
		out, ok := Default.Resolve(base, href)
		if !ok {
			if out != "" {
				t.Fatalf("Resolve(%q, %q) = %q, false", rawBase, href, out)
			}
			return
		}
		checkCanonical(t, Default, href, out)
	})
}

func FuzzTrapCheck(f *testing.F) {
	for _, s := range []string{
		"http://example.com/a/b/a/b/a/b/",
		"http://example.com/a////b?x=1&y=2",
		"http://example.com/x/1/x/2/x/3/x/4/x/5",
		"http://example.com",
		"https://[::1]:8080/a/a/a?q=/a/a/a",
		"not a url",
		"",
	} {
		f.Add(s, 0, 0)
		f.Add(s, 1, -1)
	}
	f.Fuzz(func(t *testing.T, raw string, maxRepeats, maxCount int) {
		r := TrapRules{MaxRepeats: maxRepeats % 8, MaxSegmentCount: maxCount % 8}
		err := r.Check(raw)
		if err != nil && !errors.Is(err, ErrTrap) && !errors.Is(err, ErrTooLong) {
			t.Fatalf("Check(%q) = %v, neither ErrTrap nor ErrTooLong", raw, err)
		}
		if c, cerr := Default.Canonicalize(raw); cerr == nil {
			// Canonicalising never turns a URL into a trap that was none: dot segments are
			// resolved and session ids dropped, which only shortens the path.
			if err == nil && len(c) <= len(raw) {
				if cerr := r.Check(c); cerr != nil && errors.Is(cerr, ErrTooLong) {
					t.Fatalf("Check(%q) = nil but Check(canonical %q) = %v", raw, c, cerr)
				}
			}
		}
	})
}
