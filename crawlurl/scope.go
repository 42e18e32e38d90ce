package crawlurl

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// ScopeKind says how far a crawl may wander from its seed.
type ScopeKind string

// Scope kinds.
const (
	// ScopeHost allows URLs on the seed's host and port, any scheme.
	ScopeHost ScopeKind = "host"
	// ScopeDomain allows URLs on the seed's registrable domain and its
	// subdomains, any port or scheme.
	ScopeDomain ScopeKind = "domain"
	// ScopePrefix allows URLs that start with a canonical URL prefix.
	ScopePrefix ScopeKind = "prefix"
)

// ParseScopeKind parses a scope kind, ignoring case and surrounding space.
// The empty string means ScopeHost.
func ParseScopeKind(s string) (ScopeKind, error) {
	switch k := ScopeKind(strings.ToLower(strings.TrimSpace(s))); k {
	case "":
		return ScopeHost, nil
	case ScopeHost, ScopeDomain, ScopePrefix:
		return k, nil
	}
	return "", fmt.Errorf("frontier: unknown scope kind %q", clip(s))
}

// A Scope decides which canonical URLs a crawl may visit. Build one with
// [NewScope].
type Scope struct {
	Kind ScopeKind
	// Host is the HostKey of the seed.
	Host string
	// Domain is the registrable domain (eTLD+1) of the seed's host name;
	// for an IP address, localhost or a host with no registrable domain,
	// the host name itself (an IPv6 address without brackets).
	Domain string
	// Prefix is the canonical URL prefix of a ScopePrefix scope.
	Prefix string
}

// NewScope returns the scope of the given kind around the seed URL, which
// should be canonical (it is canonicalised again, without stripping or
// sorting, to be sure). The empty kind means ScopeHost. prefix is used only
// by ScopePrefix, and ignored by the other kinds: empty means the seed URL up
// to and including the last "/" of its path; otherwise it must be a
// canonicalisable URL on the seed's host, and its canonical form is used.
func NewScope(kind ScopeKind, seedCanonicalURL string, prefix string) (Scope, error) {
	switch kind {
	case "":
		kind = ScopeHost
	case ScopeHost, ScopeDomain, ScopePrefix:
	default:
		return Scope{}, fmt.Errorf("frontier: unknown scope kind %q", clip(string(kind)))
	}
	seed, u, err := parseCanonical(seedCanonicalURL)
	if err != nil {
		return Scope{}, wrap("bad seed URL", err)
	}
	s := Scope{Kind: kind, Host: HostKey(u), Domain: registrableDomain(u.Hostname())}
	if kind != ScopePrefix {
		return s, nil
	}
	if prefix == "" {
		s.Prefix = dirPrefix(seed)
		return s, nil
	}
	p, pu, err := parseCanonical(prefix)
	if err != nil {
		return Scope{}, wrap("bad scope prefix", err)
	}
	if HostKey(pu) != s.Host {
		return Scope{}, fmt.Errorf("frontier: scope prefix host %q is not the seed host %q", HostKey(pu), s.Host)
	}
	s.Prefix = p
	return s, nil
}

// parseCanonical canonicalises raw structurally and parses the result.
func parseCanonical(raw string) (string, *url.URL, error) {
	c, err := Canonicalizer{}.Canonicalize(raw)
	if err != nil {
		return "", nil, err
	}
	u, err := url.Parse(c)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	return c, u, nil
}

// dirPrefix returns the canonical URL u up to and including the last "/" of
// its path.
func dirPrefix(u string) string {
	rest := u[strings.Index(u, "://")+3:]
	start := len(u) - len(rest) + strings.IndexByte(rest, '/') // canonical URLs have a path
	end := strings.IndexByte(u[start:], '?')
	if end < 0 {
		end = len(u)
	} else {
		end += start
	}
	return u[:strings.LastIndexByte(u[:end], '/')+1]
}

// registrableDomain returns the eTLD+1 of the host name h, or h itself for
// IP addresses, localhost and names that have none (a public suffix, a
// single label).
func registrableDomain(h string) string {
	if h == "localhost" {
		return h
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return h
	}
	d, err := publicsuffix.EffectiveTLDPlusOne(h)
	if err != nil {
		return h
	}
	return d
}

// Allows reports whether the canonical URL u is in scope. ScopeHost
// compares the URL's host and port with Host; ScopeDomain allows Domain and
// its subdomains on any port; ScopePrefix requires the prefix. Only http and
// https URLs are allowed. Allows does no parsing beyond slicing the string,
// so u must be canonical: a non-canonical spelling of an in-scope URL may be
// refused.
func (s Scope) Allows(u string) bool {
	switch s.Kind {
	case ScopeHost:
		a, ok := authorityOf(u)
		return ok && a != "" && a == s.Host
	case ScopeDomain:
		a, ok := authorityOf(u)
		if !ok || s.Domain == "" {
			return false
		}
		h := hostnameOf(a)
		if h == s.Domain {
			return true
		}
		if isIPLike(s.Domain) {
			return false
		}
		n := len(h) - len(s.Domain)
		return n > 1 && h[n-1] == '.' && h[n:] == s.Domain
	case ScopePrefix:
		return s.Prefix != "" && strings.HasPrefix(u, s.Prefix)
	}
	return false
}

// authorityOf returns the authority of an http or https URL.
func authorityOf(u string) (string, bool) {
	var rest string
	switch {
	case strings.HasPrefix(u, "http://"):
		rest = u[len("http://"):]
	case strings.HasPrefix(u, "https://"):
		rest = u[len("https://"):]
	default:
		return "", false
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return rest, true
}

// hostnameOf returns the host name of a canonical authority, without port
// and, for IPv6, without brackets.
func hostnameOf(a string) string {
	if strings.HasPrefix(a, "[") {
		if i := strings.IndexByte(a, ']'); i >= 0 {
			return a[1:i]
		}
		return a
	}
	if i := strings.LastIndexByte(a, ':'); i >= 0 {
		return a[:i]
	}
	return a
}

// isIPLike reports whether the host name h is an IP address, which has no
// subdomains. It is a cheap test: IPv6 has colons, and IPv4 is digits and
// dots (no top-level domain is numeric).
func isIPLike(h string) bool {
	return strings.IndexByte(h, ':') >= 0 || strings.Trim(h, "0123456789.") == ""
}

// contextError adds context to an error from this package without
// repeating the "frontier: " prefix.
type contextError struct {
	context string
	err     error
}

func wrap(context string, err error) error { return &contextError{context, err} }

func (e *contextError) Error() string {
	return "frontier: " + e.context + ": " + strings.TrimPrefix(e.err.Error(), "frontier: ")
}

func (e *contextError) Unwrap() error { return e.err }
