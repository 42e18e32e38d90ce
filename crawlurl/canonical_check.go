package crawlurl

import "strings"

// IsCanonical reports, in one pass over u and without allocating, whether u is surely in c's
// canonical form: when it reports true, c.Canonicalize(u) returns u unchanged and no error. It
// may report false for a URL that is canonical but that it leaves to Canonicalize to be sure of
// (an IP address or IPv6 literal as host, a path with a "/." in it); it never reports true for
// one that is not.
//
// It lets a reader of URLs that should already be canonical, such as the links a crawler sends
// (it canonicalised them when it extracted them), skip canonicalising them again, and still
// canonicalise anything else: call Canonicalize only when IsCanonical reports false.
func (c Canonicalizer) IsCanonical(u string) bool {
	if len(u) > MaxURLLength {
		return false
	}
	var scheme, rest string
	switch {
	case strings.HasPrefix(u, "http://"):
		scheme, rest = "http", u[len("http://"):]
	case strings.HasPrefix(u, "https://"):
		scheme, rest = "https", u[len("https://"):]
	default:
		return false
	}
	slash := strings.IndexByte(rest, '/')
	if slash < 0 {
		return false // a canonical URL has a path, even if it is "/"
	}
	if !canonicalAuthority(rest[:slash], scheme) {
		return false
	}
	path, query, hasQuery := rest[slash:], "", false
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, query, hasQuery = path[:i], path[i+1:], true
	}
	if !normalEscapes(path, &pathChars) || strings.Contains(path, "/.") {
		return false // dot segments, and names that merely start with a dot, are left to Canonicalize
	}
	if c.StripSessionIDs && indexFold(path, ";jsessionid=") >= 0 {
		return false
	}
	if !hasQuery {
		return true
	}
	if query == "" || !normalEscapes(query, &queryChars) {
		return false
	}
	prev := ""
	for i, kv := range strings.Split(query, "&") {
		if kv == "" {
			return false
		}
		k := paramKey(kv)
		if c.StripSessionIDs && isSessionKey(k) {
			return false
		}
		if c.SortQuery && i > 0 && k < prev {
			return false
		}
		prev = k
	}
	return true
}

// canonicalAuthority reports whether a is surely a canonical host[:port] for scheme: a
// lower-case DNS name that canonHostname keeps as it is (not one that ends in a number, which
// may be an IPv4 address written otherwise), and a port without leading zeros that is not the
// scheme's default.
func canonicalAuthority(a, scheme string) bool {
	host, port, hasPort := a, "", false
	if i := strings.LastIndexByte(a, ':'); i >= 0 {
		host, port, hasPort = a[:i], a[i+1:], true
	}
	if !validHostname(host) || endsInANumber(host) || signedNumberLabel(host[strings.LastIndexByte(host, '.')+1:]) {
		return false
	}
	if !hasPort {
		return true
	}
	if port == "" || len(port) > 5 || port[0] == '0' || port == defaultPort(scheme) {
		return false
	}
	n := 0
	for i := 0; i < len(port); i++ {
		if !isDigit(port[i]) {
			return false
		}
		n = n*10 + int(port[i]-'0')
	}
	return n <= 65535
}

// normalEscapes reports whether normEscapes(s, allowed) is s itself.
func normalEscapes(s string, allowed *[256]bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 < len(s) && isUpperHex(s[i+1]) && isUpperHex(s[i+2]) && !unreserved[unhex(s[i+1])<<4|unhex(s[i+2])] {
				i += 2
				continue
			}
			return false
		}
		if !allowed[c] {
			return false
		}
	}
	return true
}
