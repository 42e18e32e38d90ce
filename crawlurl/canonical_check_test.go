package crawlurl

import "testing"

func TestIsCanonical(t *testing.T) {
	t.Parallel()
	tests := []struct {
		u    string
		want bool
	}{
		{"http://example.com/", true},
		{"https://sub.example.com:8443/a/b.html?a=1&a=0&b=%2F", true},
		{"http://my_host-1.example/%C3%BC;x=1?q=a/b?c", true},
		{"http://xn--bcher-kva.de/", true},
		// Canonical, but left to Canonicalize.
		{"http://127.0.0.1:8080/a", false},
		{"http://[::1]/", false},
		{"http://example.com/.well-known/x", false},
		// Not canonical.
		{"HTTP://example.com/", false},
		{"http://Example.com/", false},
		{"http://example.com", false},
		{"http://example.com:80/", false},
		{"https://example.com:443/", false},
		{"http://example.com:080/", false},
		{"http://example.com:/", false},
		{"http://example.com:65536/", false},
		{"http://example.com./", false},
		{"http://user@example.com/", false},
		{"http://example.com/a/../b", false},
		{"http://example.com/a/./b", false},
		{"http://example.com/a#frag", false},
		{"http://example.com/%7e", false},
		{"http://example.com/%2f", false},
		{"http://example.com/a b", false},
		{"http://example.com/ü", false},
		{"http://example.com/a\\b", false},
		{"http://example.com/?", false},
		{"http://example.com/?a=1&&b=2", false},
		{"http://example.com/?b=1&a=2", false},
		{"http://example.com/?a=1&sid=2", false},
		{"http://example.com/x;JSESSIONID=1", false},
		{"http://0x7f000001/", false},
		{"http://1.2.3.4.5/", false},
		{"http://foo.-1/", false},
		{" http://example.com/", false},
		{"ftp://example.com/", false},
	}
	for _, tt := range tests {
		if got := Default.IsCanonical(tt.u); got != tt.want {
			t.Errorf("IsCanonical(%q) = %t, want %t", tt.u, got, tt.want)
		}
		if tt.want {
			if c, err := Default.Canonicalize(tt.u); err != nil || c != tt.u {
				t.Errorf("Canonicalize(%q) = %q, %v: the table is wrong", tt.u, c, err)
			}
		}
	}
	// Without sorting or stripping, an unsorted query and a session id are canonical.
	for _, u := range []string{"http://example.com/?b=1&a=2", "http://example.com/?a=1&sid=2"} {
		if !(Canonicalizer{}).IsCanonical(u) {
			t.Errorf("zero Canonicalizer: IsCanonical(%q) = false, want true", u)
		}
	}
}

// FuzzIsCanonical checks IsCanonical's promise: a URL it accepts is its own canonical form.
func FuzzIsCanonical(f *testing.F) {
	for _, s := range []string{
		"http://example.com/", "http://example.com/a/../b", "https://a.b:8443/x?b=1&a=2",
		"http://a.com/?a=1&&b=2", "http://a.com/%7e%2F", "http://A.com/", "http://a.com:080/",
		"http://a.com/x;jsessionid=1/y", "http://1.2.3.4/", "http://a.1/",
	} {
		f.Add(s, false, true)
		f.Add(s, true, false)
		f.Add(s, true, true)
	}
	f.Fuzz(func(t *testing.T, u string, sortQuery, strip bool) {
		c := Canonicalizer{SortQuery: sortQuery, StripSessionIDs: strip}
		if !c.IsCanonical(u) {
			return
		}
		out, err := c.Canonicalize(u)
		if err != nil || out != u {
			t.Fatalf("IsCanonical(%q) = true, but Canonicalize gives %q, %v", u, out, err)
		}
	})
}
