// Package crawlurl canonicalises URLs and decides which of them are in a
// crawl's scope.
//
// The crawl frontier is deduplicated by canonical URL: two links that a
// browser would load as the same resource should, as far as can be told from
// the URL alone, have the same canonical form. Canonicalisation is pure
// string work (no DNS, no network) and is safe on hostile input: it never
// panics, bounds its work by [MaxURLLength], and is idempotent.
package crawlurl

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// MaxURLLength is the longest URL, in bytes, that is accepted, both as input
// and as canonical output.
const MaxURLLength = 2048

// Errors returned by [Canonicalizer.Canonicalize], wrapped with details.
var (
	// ErrUnsupportedScheme means the URL is not http or https.
	ErrUnsupportedScheme = errors.New("frontier: unsupported scheme")
	// ErrTooLong means the URL, or its canonical form, is longer than
	// MaxURLLength.
	ErrTooLong = errors.New("frontier: URL too long")
	// ErrInvalidURL means the URL is malformed: not absolute, no or a bad
	// host, a bad port.
	ErrInvalidURL = errors.New("frontier: invalid URL")
)

// A Canonicalizer turns URLs into their canonical form. The zero value
// applies only the structural rules; see [Canonicalizer.Canonicalize].
type Canonicalizer struct {
	// SortQuery sorts query parameters by key. The sort is stable: the values of a repeated
	// key keep their order, which many servers give meaning to ("a=2&a=1" is not "a=1&a=2"
	// to a server that takes the last value).
	SortQuery bool
	// StripSessionIDs removes well-known session id query parameters and
	// the ";jsessionid=" path parameter.
	StripSessionIDs bool
}

// Default is the Canonicalizer used by the package-level functions, and by Trawl for every
// URL it admits: links that differ only in the order of their query parameters name one page
// (docs/adr/0009-canonical-urls-sort-query-parameters.md).
var Default = Canonicalizer{StripSessionIDs: true, SortQuery: true}

// Canonicalize is Default.Canonicalize.
func Canonicalize(raw string) (string, error) {
	return Default.Canonicalize(raw)
}

// Canonicalize returns the canonical form of the absolute http or https URL
// raw. It
//
//   - removes ASCII tab and newline characters anywhere, trims leading and
//     trailing spaces and control characters, and reads a backslash before
//     the query as a slash, as browsers do;
//   - lowercases the scheme and host, percent-decodes the host (which must
//     then be valid UTF-8), converts an internationalised host to punycode,
//     strips trailing dots from the host, normalises IPv6 literals, writes a
//     host that ends in a number as a dotted-decimal IPv4 address (see
//     [ParseIPv4Host]: "0x7f000001" and "127.1" are "127.0.0.1"), drops
//     user info and the default port (80 for http, 443 for https);
//   - drops the fragment and an empty query, makes an empty path "/" and
//     resolves "." and ".." path segments;
//   - normalises percent-encoding: escapes use upper-case hex digits,
//     escaped unreserved characters (A-Z a-z 0-9 - . _ ~) are decoded, a
//     "%" that starts no valid escape becomes "%25", and spaces, control
//     characters, non-ASCII bytes and other characters not allowed in a URL
//     are percent-encoded;
//   - drops empty query parameters ("a=1&&b=2" becomes "a=1&b=2");
//   - with StripSessionIDs, removes the query parameters jsessionid,
//     phpsessid, sid, sessid, sessionid, session_id, aspsessionid*, cfid,
//     cftoken, oscsid and zenid (names compared case-insensitively) and the
//     ";jsessionid=" path parameter;
//   - with SortQuery, sorts query parameters by key, keeping the order of a
//     repeated key's values.
//
// It fails on anything but an absolute http or https URL with a valid host
// (a host that ends in a number but is not a valid IPv4 address, such as
// "1.2.3.4.5", fails with [ErrInvalidIPv4]), and when raw or the result is longer than MaxURLLength. Canonicalize is
// idempotent: the canonical form of a canonical URL is itself.
func (c Canonicalizer) Canonicalize(raw string) (string, error) {
	if len(raw) > MaxURLLength {
		return "", fmt.Errorf("%w: %d bytes, limit %d", ErrTooLong, len(raw), MaxURLLength)
	}
	p := split(cleanInput(raw))
	if p.scheme == "" {
		return "", fmt.Errorf("%w: not absolute", ErrInvalidURL)
	}
	scheme := strings.ToLower(p.scheme)
	if scheme != "http" && scheme != "https" {
		return "", fmt.Errorf("%w %q", ErrUnsupportedScheme, clip(scheme))
	}
	if !p.hasAuthority {
		return "", fmt.Errorf("%w: missing host", ErrInvalidURL)
	}
	host, err := canonAuthority(p.authority, scheme)
	if err != nil {
		return "", err
	}

	var b strings.Builder
	b.Grow(len(scheme) + 3 + len(host) + len(p.path) + 1 + len(p.query) + 8)
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(host)
	b.WriteString(c.canonPath(p.path))
	if p.hasQuery {
		if q := c.canonQuery(p.query); q != "" {
			b.WriteByte('?')
			b.WriteString(q)
		}
	}
	out := b.String()
	if len(out) > MaxURLLength {
		return "", fmt.Errorf("%w: canonical form is %d bytes, limit %d", ErrTooLong, len(out), MaxURLLength)
	}
	return out, nil
}

// Resolve resolves href, as found in a page whose base URL is base, to a
// canonical absolute URL. It reports false when href is unusable: empty,
// a javascript:, data:, mailto:, tel: or any other non-http(s) URL, relative
// with no usable base, or not canonicalisable. Surrounding whitespace is
// ignored. base may be nil, in which case only absolute hrefs resolve.
func (c Canonicalizer) Resolve(base *url.URL, href string) (string, bool) {
	href = cleanInput(href)
	if href == "" || len(href) > MaxURLLength {
		return "", false
	}
	ref := split(href)
	target := href
	if ref.scheme != "" {
		if !isHTTP(ref.scheme) {
			return "", false
		}
	} else {
		if base == nil {
			return "", false
		}
		bp := split(cleanInput(base.String()))
		if !isHTTP(bp.scheme) || !bp.hasAuthority {
			return "", false
		}
		target = resolveRef(bp, ref, href)
	}
	out, err := c.Canonicalize(target)
	if err != nil {
		return "", false
	}
	return out, true
}

// resolveRef resolves the relative reference ref (whose text is href)
// against the absolute base bp, following RFC 3986 section 5.2.2, except
// that dot segments are left for Canonicalize to remove.
func resolveRef(bp, ref parts, href string) string {
	if ref.hasAuthority {
		return bp.scheme + ":" + href
	}
	var b strings.Builder
	b.Grow(len(bp.scheme) + 3 + len(bp.authority) + len(bp.path) + len(href) + len(bp.query) + 2)
	b.WriteString(bp.scheme)
	b.WriteString("://")
	b.WriteString(bp.authority)
	query, hasQuery := ref.query, ref.hasQuery
	switch {
	case ref.path == "":
		b.WriteString(bp.path)
		if !hasQuery {
			query, hasQuery = bp.query, bp.hasQuery
		}
	case ref.path[0] == '/':
		b.WriteString(ref.path)
	default:
		if bp.path == "" {
			b.WriteByte('/')
		} else {
			b.WriteString(bp.path[:strings.LastIndexByte(bp.path, '/')+1])
		}
		b.WriteString(ref.path)
	}
	if hasQuery {
		b.WriteByte('?')
		b.WriteString(query)
	}
	return b.String()
}

// HostKey returns the politeness key of u: its lower-cased host name, with
// ":port" only when the port is not the default for the scheme. IPv6
// addresses keep their brackets. For a canonical URL this is u.Host.
func HostKey(u *url.URL) string {
	if u == nil {
		return ""
	}
	h := strings.TrimRight(strings.ToLower(u.Hostname()), ".")
	if strings.IndexByte(h, ':') >= 0 {
		h = "[" + h + "]"
	}
	port := u.Port()
	if port == "" || port == defaultPort(strings.ToLower(u.Scheme)) {
		return h
	}
	return h + ":" + port
}

func defaultPort(scheme string) string {
	switch scheme {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}

func isHTTP(scheme string) bool {
	return strings.EqualFold(scheme, "http") || strings.EqualFold(scheme, "https")
}

// clip shortens s for use in an error message.
func clip(s string) string {
	const n = 64
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// cleanInput does what browsers do to a URL before parsing it: it removes
// ASCII tab and newline characters, trims leading and trailing C0 controls
// and spaces, and turns backslashes before the query or fragment into
// slashes.
func cleanInput(s string) string {
	if strings.ContainsAny(s, "\t\n\r") {
		s = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return -1
			}
			return r
		}, s)
	}
	s = strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
	end := strings.IndexAny(s, "?#")
	if end < 0 {
		end = len(s)
	}
	if strings.IndexByte(s[:end], '\\') >= 0 {
		s = strings.ReplaceAll(s[:end], `\`, "/") + s[end:]
	}
	return s
}

// parts are the components of a URL reference (RFC 3986 appendix B). The
// fragment is dropped.
type parts struct {
	scheme       string
	authority    string
	path         string
	query        string
	hasAuthority bool
	hasQuery     bool
}

func split(s string) parts {
	var p parts
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ':' {
			if i > 0 {
				p.scheme, s = s[:i], s[i+1:]
			}
			break
		}
		if !isAlpha(c) && (i == 0 || !isDigit(c) && c != '+' && c != '-' && c != '.') {
			break
		}
	}
	if strings.HasPrefix(s, "//") {
		s = s[2:]
		i := strings.IndexAny(s, "/?#")
		if i < 0 {
			i = len(s)
		}
		p.authority, s = s[:i], s[i:]
		p.hasAuthority = true
	}
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	if i := strings.IndexByte(s, '?'); i >= 0 {
		p.query, p.hasQuery = s[i+1:], true
		s = s[:i]
	}
	p.path = s
	return p
}

// canonAuthority returns the canonical host[:port] of authority.
func canonAuthority(authority, scheme string) (string, error) {
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		authority = authority[i+1:] // drop user info
	}
	var host, port string
	if strings.HasPrefix(authority, "[") {
		end := strings.IndexByte(authority, ']')
		if end < 0 {
			return "", fmt.Errorf("%w: bad IPv6 host", ErrInvalidURL)
		}
		rest := authority[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return "", fmt.Errorf("%w: bad IPv6 host", ErrInvalidURL)
			}
			port = rest[1:]
		}
		addr, err := netip.ParseAddr(authority[1:end])
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return "", fmt.Errorf("%w: bad IPv6 host", ErrInvalidURL)
		}
		host = "[" + addr.String() + "]"
	} else {
		host = authority
		if i := strings.LastIndexByte(authority, ':'); i >= 0 {
			host, port = authority[:i], authority[i+1:]
		}
		var err error
		if host, err = canonHostname(host); err != nil {
			return "", err
		}
	}
	port, err := canonPort(port, scheme)
	if err != nil {
		return "", err
	}
	if port != "" {
		return host + ":" + port, nil
	}
	return host, nil
}

// canonPort returns the canonical form of a port: without leading zeros,
// and empty for the scheme's default port.
func canonPort(port, scheme string) (string, error) {
	if port == "" {
		return "", nil
	}
	for i := 0; i < len(port); i++ {
		if !isDigit(port[i]) {
			return "", fmt.Errorf("%w: bad port", ErrInvalidURL)
		}
	}
	port = strings.TrimLeft(port, "0")
	if port == "" {
		port = "0"
	}
	if n, err := strconv.Atoi(port); err != nil || len(port) > 5 || n > 65535 {
		return "", fmt.Errorf("%w: bad port", ErrInvalidURL)
	}
	if port == defaultPort(scheme) {
		return "", nil
	}
	return port, nil
}

// idnaProfile maps internationalised host names to ASCII the way browsers
// do (UTS #46 non-transitional processing, no hyphen or STD3 checks); the
// result is then checked by validHostname.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.CheckHyphens(false),
	idna.StrictDomainName(false),
)

// canonHostname returns the canonical form of a host that is not an IPv6
// literal, following the URL Standard's host parser: the host is
// percent-decoded and must then be valid UTF-8, an internationalised name is
// mapped to ASCII, and a name that ends in a number is an IPv4 address,
// parsed as the standard's IPv4 parser does and written in dotted decimal, or
// invalid. Trailing dots are dropped first (and again after mapping), so
// "foo.09.." is rejected like "foo.09" where the standard would keep it as a
// domain: a canonical host must canonicalise to itself.
func canonHostname(h string) (string, error) {
	if strings.IndexByte(h, '%') >= 0 {
		u, err := url.PathUnescape(h)
		if err != nil {
			return "", fmt.Errorf("%w: bad escape in host", ErrInvalidURL)
		}
		h = u
	}
	if !utf8.ValidString(h) {
		// Browsers decode the bytes as UTF-8, and U+FFFD, which invalid
		// bytes become, is not allowed in a domain.
		return "", fmt.Errorf("%w: host is not valid UTF-8 once percent-decoded", ErrInvalidURL)
	}
	h = strings.TrimRight(h, ".")
	if h == "" {
		return "", fmt.Errorf("%w: empty host", ErrInvalidURL)
	}
	if isASCII(h) {
		h = strings.ToLower(h)
	} else {
		a, err := idnaProfile.ToASCII(h)
		if err != nil {
			return "", fmt.Errorf("%w: bad internationalised host: %w", ErrInvalidURL, err)
		}
		h = strings.TrimRight(a, ".")
	}
	if !validHostname(h) {
		return "", fmt.Errorf("%w: bad host %q", ErrInvalidURL, clip(h))
	}
	if addr, isIPv4, err := ParseIPv4Host(h); isIPv4 {
		if err != nil {
			return "", err
		}
		return addr.String(), nil
	}
	if signedNumberLabel(h[strings.LastIndexByte(h, '.')+1:]) {
		return "", fmt.Errorf("%w: host %q ends in a signed number", ErrInvalidURL, clip(h))
	}
	return h, nil
}

// signedNumberLabel reports whether a host's last label is a number with a minus sign ("-1",
// "0x-1", "0-7"). To the URL Standard that is no number and the host a domain, but colly's URL
// parser (whatwg-url) reads it as a negative IPv4 part and would connect to another address
// ("1.2.3.-1" to 1.2.2.255) or fail to fetch. No real name ends so, so such hosts are refused.
func signedNumberLabel(l string) bool {
	digits := "0123456789"
	switch {
	case len(l) >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X'):
		l, digits = l[2:], "0123456789abcdefABCDEF"
	case len(l) >= 2 && l[0] == '0':
		l, digits = l[1:], "01234567"
	}
	return len(l) >= 2 && l[0] == '-' && strings.TrimLeft(l[1:], digits) == ""
}

// ErrInvalidIPv4 means a host ends in a number, so that the URL Standard
// reads it as an IPv4 address, but it is not a valid one: too many parts, a
// part that is not a number, or a number out of range. It wraps
// [ErrInvalidURL].
var ErrInvalidIPv4 = fmt.Errorf("%w: bad IPv4 address", ErrInvalidURL)

// ParseIPv4Host reads an ASCII host name as the URL Standard's host parser
// does (https://url.spec.whatwg.org/#concept-ipv4-parser). A host whose last
// dot-separated part (ignoring one trailing dot) is a number, decimal, octal
// with a leading 0 or hexadecimal with 0x, is an IPv4 address: isIPv4 is
// true, and addr is that address, or err ([ErrInvalidIPv4]) says why it is
// invalid. Up to four parts are read; the last one fills the bytes the
// others leave, so "0x7f000001", "2130706433", "0177.1" and "127.0.0.1" are
// all 127.0.0.1, and "1.2.3.4.5", "1.2.3.256" and "foo.1" are invalid. Any
// other host is a domain (isIPv4 false), and so is an IPv6 address (any
// host with a colon). Signs, spaces and underscores are not digits.
func ParseIPv4Host(host string) (addr netip.Addr, isIPv4 bool, err error) {
	if strings.IndexByte(host, ':') >= 0 || !endsInANumber(host) {
		return netip.Addr{}, false, nil
	}
	parts := strings.Split(host, ".")
	if parts[len(parts)-1] == "" && len(parts) > 1 {
		parts = parts[:len(parts)-1]
	}
	if len(parts) > 4 {
		return netip.Addr{}, true, fmt.Errorf("%w %q: more than four parts", ErrInvalidIPv4, clip(host))
	}
	var v uint64
	for i, part := range parts {
		n, ok := parseIPv4Number(part)
		if !ok {
			return netip.Addr{}, true, fmt.Errorf("%w %q: part %q is not a number", ErrInvalidIPv4, clip(host), clip(part))
		}
		if i < len(parts)-1 {
			if n > 255 {
				return netip.Addr{}, true, fmt.Errorf("%w %q: part %q is greater than 255", ErrInvalidIPv4, clip(host), clip(part))
			}
			v = v<<8 | n
			continue
		}
		// The last part fills the remaining 5-len(parts) bytes.
		bits := 8 * uint(5-len(parts))
		if n >= 1<<bits {
			return netip.Addr{}, true, fmt.Errorf("%w %q: last part %q is greater than %d", ErrInvalidIPv4, clip(host), clip(part), uint64(1)<<bits-1)
		}
		v = v<<bits | n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true, nil
}

// endsInANumber is the URL Standard's ends-in-a-number checker: the last
// part, ignoring one trailing dot, is all decimal digits or an IPv4 number.
func endsInANumber(host string) bool {
	parts := strings.Split(host, ".")
	if parts[len(parts)-1] == "" {
		if len(parts) == 1 {
			return false
		}
		parts = parts[:len(parts)-1]
	}
	last := parts[len(parts)-1]
	if last != "" && strings.TrimLeft(last, "0123456789") == "" {
		return true
	}
	_, ok := parseIPv4Number(last)
	return ok
}

// parseIPv4Number is the URL Standard's IPv4 number parser: "0x" or "0X"
// starts a hexadecimal number (which may be empty, meaning 0), another
// leading "0" an octal one, anything else is decimal. It reports false for
// an empty part or a digit outside the radix. Numbers too large for any
// part saturate at 1<<32, which every range check rejects.
func parseIPv4Number(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	radix := uint64(10)
	switch {
	case len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		s, radix = s[2:], 16
	case len(s) >= 2 && s[0] == '0':
		s, radix = s[1:], 8
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		var d uint64
		switch c := s[i]; {
		case isDigit(c):
			d = uint64(c - '0')
		case isHex(c):
			d = uint64(unhex(c))
		default:
			return 0, false
		}
		if d >= radix {
			return 0, false
		}
		n = min(n*radix+d, 1<<32)
	}
	return n, true
}

// validHostname reports whether h is a lower-case DNS name: dot-separated,
// non-empty labels of at most 63 bytes of a-z, 0-9, '-' and '_', at most
// 253 bytes in all.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
			continue
		case 'a' <= c && c <= 'z', isDigit(c), c == '-', c == '_':
		default:
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return label > 0
}

func (c Canonicalizer) canonPath(p string) string {
	p = normEscapes(p, &pathChars)
	if c.StripSessionIDs {
		p = stripPathSessionID(p)
	}
	if p == "" {
		return "/"
	}
	return removeDotSegments(p)
}

// stripPathSessionID removes a ";jsessionid=..." path parameter: from the
// first ";jsessionid=" (any case) to the end of its segment.
func stripPathSessionID(p string) string {
	const param = ";jsessionid="
	i := indexFold(p, param)
	if i < 0 {
		return p
	}
	end := strings.IndexByte(p[i:], '/')
	if end < 0 {
		return p[:i]
	}
	return p[:i] + p[i+end:]
}

// indexFold is a case-insensitive strings.Index for a lower-case ASCII
// needle.
func indexFold(s, needle string) int {
	for i := 0; i+len(needle) <= len(s); i++ {
		if s[i] == needle[0] && strings.EqualFold(s[i:i+len(needle)], needle) {
			return i
		}
	}
	return -1
}

// removeDotSegments removes "." and ".." segments from the absolute path p,
// as in RFC 3986 section 5.2.4.
func removeDotSegments(p string) string {
	if !strings.Contains(p, "/.") {
		return p
	}
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	for i, seg := range segs {
		last := i == len(segs)-1
		switch seg {
		case ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
			continue
		}
		if last {
			out = append(out, "") // "/a/." and "/a/b/.." end in a slash
		}
	}
	return "/" + strings.Join(out, "/")
}

func (c Canonicalizer) canonQuery(q string) string {
	q = normEscapes(q, &queryChars)
	if q == "" {
		return ""
	}
	params := strings.Split(q, "&")
	kept := params[:0]
	for _, kv := range params {
		if kv == "" {
			continue
		}
		if c.StripSessionIDs && isSessionKey(paramKey(kv)) {
			continue
		}
		kept = append(kept, kv)
	}
	if c.SortQuery {
		slices.SortStableFunc(kept, func(a, b string) int {
			return strings.Compare(paramKey(a), paramKey(b))
		})
	}
	return strings.Join(kept, "&")
}

func paramKey(kv string) string {
	if i := strings.IndexByte(kv, '='); i >= 0 {
		return kv[:i]
	}
	return kv
}

// isSessionKey reports whether a query parameter named k carries a session
// id.
func isSessionKey(k string) bool {
	switch len(k) {
	case 3:
		return strings.EqualFold(k, "sid")
	case 4:
		return strings.EqualFold(k, "cfid")
	case 5:
		return strings.EqualFold(k, "zenid") // Zen Cart
	case 6:
		return strings.EqualFold(k, "sessid") || strings.EqualFold(k, "oscsid") // osCommerce
	case 7:
		return strings.EqualFold(k, "cftoken")
	case 9:
		return strings.EqualFold(k, "phpsessid") || strings.EqualFold(k, "sessionid")
	case 10:
		return strings.EqualFold(k, "jsessionid") || strings.EqualFold(k, "session_id")
	}
	const asp = "aspsessionid"
	return len(k) >= len(asp) && strings.EqualFold(k[:len(asp)], asp)
}

// Characters that may appear unescaped in a canonical path or query, and
// the unreserved characters of RFC 3986. Read-only after initialisation.
var (
	unreserved = byteSet("-._~")
	pathChars  = byteSet("-._~!$&'()*+,;=:@/")
	queryChars = byteSet("-._~!$&'()*+,;=:@/?")
)

// byteSet returns the set of ASCII letters, digits and the bytes of extra.
func byteSet(extra string) [256]bool {
	var set [256]bool
	for c := 0; c < 256; c++ {
		b := byte(c)
		set[c] = isAlpha(b) || isDigit(b) || strings.IndexByte(extra, b) >= 0
	}
	return set
}

const upperHex = "0123456789ABCDEF"

// normEscapes normalises percent-encoding in s, a path or query: valid
// escapes get upper-case hex digits, escaped unreserved characters are
// decoded, a '%' that starts no valid escape becomes "%25", and bytes not in
// allowed are escaped.
func normEscapes(s string, allowed *[256]bool) string {
	if normalEscapes(s, allowed) {
		return s // the fast path: s is already normal
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
				v := unhex(s[i+1])<<4 | unhex(s[i+2])
				i += 2
				if unreserved[v] {
					b.WriteByte(v)
					continue
				}
				c = v
			}
			b.WriteByte('%')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&15])
		case allowed[c]:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&15])
		}
	}
	return b.String()
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isHex(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
func isUpperHex(c byte) bool { return isDigit(c) || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case isDigit(c):
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
