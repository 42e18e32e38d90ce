package crawlurl

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseScopeKind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    ScopeKind
		wantErr bool
	}{
		{in: "", want: ScopeHost},
		{in: "host", want: ScopeHost},
		{in: "domain", want: ScopeDomain},
		{in: "prefix", want: ScopePrefix},
		{in: " Domain ", want: ScopeDomain},
		{in: "PREFIX", want: ScopePrefix},
		{in: "site", wantErr: true},
		{in: "hosts", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseScopeKind(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseScopeKind(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseScopeKind(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
	if _, err := ParseScopeKind("site"); err == nil || err.Error() != `frontier: unknown scope kind "site"` {
		t.Errorf("ParseScopeKind(site) error = %v", err)
	}
}

func TestNewScope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		kind    ScopeKind
		seed    string
		prefix  string
		want    Scope
		wantErr bool
	}{
		{name: "host", kind: ScopeHost, seed: "https://www.example.com/docs/intro", want: Scope{Kind: ScopeHost, Host: "www.example.com", Domain: "example.com"}},
		{name: "empty kind is host", kind: "", seed: "https://www.example.com/", want: Scope{Kind: ScopeHost, Host: "www.example.com", Domain: "example.com"}},
		{name: "host with port", kind: ScopeHost, seed: "http://example.com:8080/", want: Scope{Kind: ScopeHost, Host: "example.com:8080", Domain: "example.com"}},
		{name: "domain", kind: ScopeDomain, seed: "https://a.b.example.co.uk/", want: Scope{Kind: ScopeDomain, Host: "a.b.example.co.uk", Domain: "example.co.uk"}},
		{name: "domain of idn", kind: ScopeDomain, seed: "http://www.xn--bcher-kva.de/", want: Scope{Kind: ScopeDomain, Host: "www.xn--bcher-kva.de", Domain: "xn--bcher-kva.de"}},
		{name: "domain of ipv4", kind: ScopeDomain, seed: "http://192.0.2.1:8080/", want: Scope{Kind: ScopeDomain, Host: "192.0.2.1:8080", Domain: "192.0.2.1"}},
		{name: "domain of ipv6", kind: ScopeDomain, seed: "http://[2001:db8::1]/", want: Scope{Kind: ScopeDomain, Host: "[2001:db8::1]", Domain: "2001:db8::1"}},
		{name: "domain of localhost", kind: ScopeDomain, seed: "http://localhost:3000/", want: Scope{Kind: ScopeDomain, Host: "localhost:3000", Domain: "localhost"}},
		{name: "domain of single label", kind: ScopeDomain, seed: "http://intranet/", want: Scope{Kind: ScopeDomain, Host: "intranet", Domain: "intranet"}},
		{name: "domain of public suffix", kind: ScopeDomain, seed: "http://co.uk/", want: Scope{Kind: ScopeDomain, Host: "co.uk", Domain: "co.uk"}},
		{name: "prefix default", kind: ScopePrefix, seed: "https://example.com/docs/intro?x=1", want: Scope{Kind: ScopePrefix, Host: "example.com", Domain: "example.com", Prefix: "https://example.com/docs/"}},
		{name: "prefix default directory", kind: ScopePrefix, seed: "https://example.com/docs/", want: Scope{Kind: ScopePrefix, Host: "example.com", Domain: "example.com", Prefix: "https://example.com/docs/"}},
		{name: "prefix default root", kind: ScopePrefix, seed: "https://example.com", want: Scope{Kind: ScopePrefix, Host: "example.com", Domain: "example.com", Prefix: "https://example.com/"}},
		{name: "prefix default slash in query", kind: ScopePrefix, seed: "https://example.com/a/b?next=/c/d", want: Scope{Kind: ScopePrefix, Host: "example.com", Domain: "example.com", Prefix: "https://example.com/a/"}},
		{name: "prefix given", kind: ScopePrefix, seed: "https://example.com/docs/intro", prefix: "HTTPS://Example.com/docs/v2/", want: Scope{Kind: ScopePrefix, Host: "example.com", Domain: "example.com", Prefix: "https://example.com/docs/v2/"}},
		{name: "prefix on other scheme", kind: ScopePrefix, seed: "https://example.com/", prefix: "http://example.com/a", want: Scope{Kind: ScopePrefix, Host: "example.com", Domain: "example.com", Prefix: "http://example.com/a"}},
		{name: "non-canonical seed", kind: ScopeHost, seed: "HTTP://Example.com:80/a/../", want: Scope{Kind: ScopeHost, Host: "example.com", Domain: "example.com"}},
		{name: "prefix on other host", kind: ScopePrefix, seed: "https://example.com/", prefix: "https://other.com/", wantErr: true},
		{name: "prefix on other port", kind: ScopePrefix, seed: "https://example.com/", prefix: "https://example.com:8443/", wantErr: true},
		{name: "bad prefix", kind: ScopePrefix, seed: "https://example.com/", prefix: "/docs/", wantErr: true},
		{name: "prefix ignored for host scope", kind: ScopeHost, seed: "https://example.com/", prefix: "https://other.com/a/", want: Scope{Kind: ScopeHost, Host: "example.com", Domain: "example.com"}},
		{name: "prefix ignored for domain scope", kind: ScopeDomain, seed: "https://example.com/", prefix: "not a url", want: Scope{Kind: ScopeDomain, Host: "example.com", Domain: "example.com"}},
		{name: "bad seed", kind: ScopeHost, seed: "ftp://example.com/", wantErr: true},
		{name: "empty seed", kind: ScopeHost, seed: "", wantErr: true},
		{name: "bad kind", kind: "site", seed: "https://example.com/", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := NewScope(tt.kind, tt.seed, tt.prefix)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewScope(%q, %q, %q) error = %v, wantErr %v", tt.kind, tt.seed, tt.prefix, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("NewScope(%q, %q, %q) mismatch (-want +got):\n%s", tt.kind, tt.seed, tt.prefix, diff)
			}
		})
	}
}

func TestNewScopeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		seed    string
		prefix  string
		wantErr error
		wantMsg string
	}{
		{name: "bad seed", seed: "ftp://example.com/", wantErr: ErrUnsupportedScheme, wantMsg: `frontier: bad seed URL: unsupported scheme "ftp"`},
		{name: "bad prefix", seed: "https://example.com/", prefix: "/docs/", wantErr: ErrInvalidURL, wantMsg: "frontier: bad scope prefix: invalid URL: not absolute"},
		{name: "long prefix", seed: "https://example.com/", prefix: "https://example.com/" + strings.Repeat("a", MaxURLLength), wantErr: ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewScope(ScopePrefix, tt.seed, tt.prefix)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("NewScope error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantMsg != "" && err.Error() != tt.wantMsg {
				t.Errorf("NewScope error %q, want %q", err, tt.wantMsg)
			}
		})
	}
}

func TestScopeAllows(t *testing.T) {
	t.Parallel()
	mk := func(kind ScopeKind, seed, prefix string) Scope {
		t.Helper()
		s, err := NewScope(kind, seed, prefix)
		if err != nil {
			t.Fatalf("NewScope: %v", err)
		}
		return s
	}
	host := mk(ScopeHost, "https://www.example.com/start", "")
	hostPort := mk(ScopeHost, "http://example.com:8080/", "")
	hostV6 := mk(ScopeHost, "http://[::1]:8080/", "")
	domain := mk(ScopeDomain, "https://www.example.co.uk/", "")
	domainIP := mk(ScopeDomain, "http://192.0.2.1/", "")
	domainV6 := mk(ScopeDomain, "http://[2001:db8::1]:8080/", "")
	prefix := mk(ScopePrefix, "https://example.com/docs/intro", "")

	tests := []struct {
		name  string
		scope Scope
		url   string
		want  bool
	}{
		{name: "host same", scope: host, url: "https://www.example.com/other?x=1", want: true},
		{name: "host root", scope: host, url: "https://www.example.com/", want: true},
		{name: "host other scheme", scope: host, url: "http://www.example.com/", want: true},
		{name: "host no path", scope: host, url: "https://www.example.com", want: true},
		{name: "host subdomain", scope: host, url: "https://a.www.example.com/", want: false},
		{name: "host parent", scope: host, url: "https://example.com/", want: false},
		{name: "host other port", scope: host, url: "https://www.example.com:8443/", want: false},
		{name: "host suffix trick", scope: host, url: "https://www.example.com.evil.com/", want: false},
		{name: "host userinfo trick", scope: host, url: "https://www.example.com@evil.com/", want: false},
		{name: "host in path", scope: host, url: "https://evil.com/www.example.com/", want: false},
		{name: "host ftp", scope: host, url: "ftp://www.example.com/", want: false},
		{name: "host relative", scope: host, url: "/www.example.com/", want: false},
		{name: "host empty", scope: host, url: "", want: false},
		{name: "host with port same", scope: hostPort, url: "http://example.com:8080/a", want: true},
		{name: "host with port default", scope: hostPort, url: "http://example.com/a", want: false},
		{name: "host ipv6", scope: hostV6, url: "http://[::1]:8080/", want: true},
		{name: "host ipv6 other port", scope: hostV6, url: "http://[::1]/", want: false},
		{name: "domain itself", scope: domain, url: "http://example.co.uk/", want: true},
		{name: "domain seed host", scope: domain, url: "https://www.example.co.uk/a", want: true},
		{name: "domain deep subdomain", scope: domain, url: "https://a.b.c.example.co.uk/", want: true},
		{name: "domain any port", scope: domain, url: "https://cdn.example.co.uk:8443/", want: true},
		{name: "domain sibling", scope: domain, url: "https://other.co.uk/", want: false},
		{name: "domain glued", scope: domain, url: "https://badexample.co.uk/", want: false},
		{name: "domain as subdomain of other", scope: domain, url: "https://example.co.uk.evil.com/", want: false},
		{name: "domain in query", scope: domain, url: "https://evil.com/?u=x.example.co.uk", want: false},
		{name: "domain ip", scope: domainIP, url: "http://192.0.2.1:9000/", want: true},
		{name: "domain ip no subdomains", scope: domainIP, url: "http://x.192.0.2.1/", want: false},
		{name: "domain ipv6", scope: domainV6, url: "http://[2001:db8::1]/", want: true},
		{name: "domain ipv6 other", scope: domainV6, url: "http://[2001:db8::2]/", want: false},
		{name: "prefix inside", scope: prefix, url: "https://example.com/docs/a/b", want: true},
		{name: "prefix itself", scope: prefix, url: "https://example.com/docs/", want: true},
		{name: "prefix parent", scope: prefix, url: "https://example.com/docs", want: false},
		{name: "prefix sibling", scope: prefix, url: "https://example.com/blog/", want: false},
		{name: "prefix other scheme", scope: prefix, url: "http://example.com/docs/a", want: false},
		{name: "zero scope", scope: Scope{}, url: "https://example.com/", want: false},
		{name: "empty prefix scope", scope: Scope{Kind: ScopePrefix}, url: "https://example.com/", want: false},
		{name: "empty host scope", scope: Scope{Kind: ScopeHost}, url: "https:///", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.scope.Allows(tt.url); got != tt.want {
				t.Errorf("%+v.Allows(%q) = %v, want %v", tt.scope, tt.url, got, tt.want)
			}
		})
	}
}

func TestScopeAllowsDoesNotAllocate(t *testing.T) {
	s, err := NewScope(ScopeDomain, "https://www.example.com/", "")
	if err != nil {
		t.Fatal(err)
	}
	u := "https://static.example.com:8443/" + strings.Repeat("a", 100)
	allocs := testing.AllocsPerRun(100, func() {
		if !s.Allows(u) {
			t.Fatal("not allowed")
		}
	})
	if allocs != 0 {
		t.Errorf("Allows allocated %v times, want 0", allocs)
	}
}

func BenchmarkScopeAllowsHost(b *testing.B) {
	s, err := NewScope(ScopeHost, "https://www.example.com/", "")
	if err != nil {
		b.Fatal(err)
	}
	u := "https://www.example.com/some/path/to/a/page?with=query"
	b.ReportAllocs()
	for b.Loop() {
		s.Allows(u)
	}
}

func BenchmarkCanonicalize(b *testing.B) {
	raw := "HTTP://www.Example.com:80/a/./b/../c/%7euser/page.html?b=2&jsessionid=x&a=1#frag"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonicalize(raw); err != nil {
			b.Fatal(err)
		}
	}
}
