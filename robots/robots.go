// Package robots parses robots.txt files (RFC 9309) and answers whether a crawler may fetch
// a path.
//
// It is pure: no network and no clock. The pipeline fetches robots.txt, keeps the body, and
// asks [Parse] (or [FromStatus] for the outcome of the fetch) for the rules.
//
// Parsing follows RFC 9309 and the behaviour of Google's reference parser where the RFC
// leaves room:
//
//   - A group is one or more consecutive user-agent lines followed by rules. Rules before the
//     first user-agent line are ignored. Lines that are not user-agent, allow or disallow
//     (sitemap, crawl-delay, unknown ones) do not end a group.
//   - The crawler's product token (see [ProductToken]) is matched case-insensitively against
//     each user-agent line's token. All matching groups are merged; if none matches, all "*"
//     groups are merged; if there are none either, everything is allowed.
//   - The rule with the longest pattern that matches the path (and query) wins; on a tie,
//     allow wins. "*" matches any run of characters and a final "$" anchors the end.
//     Patterns and paths are compared after normalising their percent-encoding.
//     "/robots.txt" is always allowed.
//   - Crawl-delay (not in the RFC, but common) is read for the group, in seconds.
//   - Sitemap lines are collected from anywhere in the file.
//   - Only the first MaxBytes are parsed (the RFC requires at least 500 KiB); a line cut by
//     the limit is dropped. Keys are case-insensitive and a few common misspellings are
//     accepted; comments start at '#'; CR, LF and CRLF end lines; a UTF-8 BOM, or the start of
//     one, is skipped.
package robots

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxBytes is how much of a robots.txt file is parsed.
const MaxBytes = 500 << 10

// MaxCrawlDelay caps the Crawl-delay a file may set.
const MaxCrawlDelay = 24 * time.Hour

// maxSitemaps bounds how many Sitemap lines are kept.
const maxSitemaps = 1000

// Robots is a parsed robots.txt file. The zero value allows everything. It is safe for
// concurrent use once built.
type Robots struct {
	groups   []group
	sitemaps []string
	// disallowAll is set by FromStatus for an unreachable file.
	disallowAll bool
	// truncated reports that the file was longer than MaxBytes.
	truncated bool
}

type group struct {
	agents     []string // lower-case product tokens; "*" for any
	rules      []rule
	crawlDelay time.Duration
	hasDelay   bool
}

type rule struct {
	allow   bool
	pattern string // normalised; may contain '*' and a final '$'
}

// Rules are the rules that apply to one crawler: the merged groups for its product token.
type Rules struct {
	rules       []rule
	crawlDelay  time.Duration
	hasDelay    bool
	disallowAll bool
}

// AllowAll returns rules that allow everything, as for a robots.txt answering 4xx.
func AllowAll() *Robots { return &Robots{} }

// DisallowAll returns rules that disallow everything, as for an unreachable robots.txt or one
// answering 5xx.
func DisallowAll() *Robots { return &Robots{disallowAll: true} }

// FromStatus interprets the final response to a robots.txt request (after following up to 5
// redirects) as RFC 9309 section 2.3.1 says: a 2xx is parsed; a 4xx (including 429 here:
// callers that want to retry 429 should treat it as unreachable), or a 3xx left after the
// redirects allowed, means the file is unavailable and there are no restrictions; anything
// else (5xx, or a status of 0 for a network error) means the site is unreachable and
// everything is disallowed until it can be fetched again.
func FromStatus(status int, body []byte) *Robots {
	switch {
	case status >= 200 && status < 300:
		return Parse(body)
	case status >= 300 && status < 500:
		return AllowAll()
	}
	return DisallowAll()
}

// Truncated reports whether the file was longer than MaxBytes, so that its end was ignored.
func (r *Robots) Truncated() bool { return r.truncated }

// Sitemaps returns the URLs of the Sitemap lines, in order, without duplicates.
func (r *Robots) Sitemaps() []string { return slices.Clone(r.sitemaps) }

// Allowed reports whether the crawler whose User-Agent (or product token) is userAgent may
// fetch the URL path (with its query), for example "/a/b?c=d".
func (r *Robots) Allowed(userAgent, path string) bool { return r.For(userAgent).Allowed(path) }

// For returns the rules that apply to the crawler whose User-Agent header (or product token)
// is userAgent.
func (r *Robots) For(userAgent string) *Rules {
	if r.disallowAll {
		return &Rules{disallowAll: true}
	}
	token := strings.ToLower(ProductToken(userAgent))
	out := &Rules{}
	matched := false
	for pass := 0; pass < 2 && !matched; pass++ {
		for _, g := range r.groups {
			if !g.matches(token, pass == 1) {
				continue
			}
			matched = true
			out.rules = append(out.rules, g.rules...)
			if g.hasDelay && (!out.hasDelay || g.crawlDelay > out.crawlDelay) {
				out.crawlDelay, out.hasDelay = g.crawlDelay, true
			}
		}
	}
	return out
}

func (g *group) matches(token string, star bool) bool {
	for _, a := range g.agents {
		if star && a == "*" || !star && a != "*" && token != "" && a == token {
			return true
		}
	}
	return false
}

// CrawlDelay returns the group's Crawl-delay and whether it set one. When several merged
// groups set one, the longest wins.
func (r *Rules) CrawlDelay() (time.Duration, bool) { return r.crawlDelay, r.hasDelay }

// Allowed reports whether path (the URL's path and query, e.g. "/a?b=1") may be fetched.
func (r *Rules) Allowed(path string) bool {
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	path = strings.ReplaceAll(normalize(path), "$", "%24") // a '$' in a pattern is the anchor
	if path == "/robots.txt" {
		return true
	}
	if r.disallowAll {
		return false
	}
	best, allow := -1, true
	for _, ru := range r.rules {
		n := len(ru.pattern)
		if n < best || n == best && allow {
			continue // cannot beat the current winner
		}
		if match(ru.pattern, path) {
			if n > best || ru.allow {
				best, allow = n, ru.allow
			}
		}
	}
	return allow
}

// ProductToken returns the product token of a User-Agent header: its leading run of letters,
// digits, '_' and '-' ("TrawlBot" for "TrawlBot/0.1 (+https://…)").
func ProductToken(userAgent string) string {
	userAgent = strings.TrimSpace(userAgent)
	i := 0
	for i < len(userAgent) && isTokenByte(userAgent[i]) {
		i++
	}
	return userAgent[:i]
}

func isTokenByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// Parse parses a robots.txt body. It never fails: lines it cannot read are ignored.
func Parse(body []byte) *Robots {
	r := &Robots{}
	if len(body) > MaxBytes {
		r.truncated = true
		body = body[:MaxBytes]
		// Drop the line the limit cut, unless the cut fell on a line end.
		if i := bytes.LastIndexAny(body, "\r\n"); i >= 0 {
			body = body[:i]
		} else {
			body = nil
		}
	}
	body = skipBOM(body)
	var cur *group
	inAgents := false // the last key line was a user-agent line
	seenSitemap := map[string]bool{}
	for len(body) > 0 {
		var line []byte
		if i := bytes.IndexAny(body, "\r\n"); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			line, body = body, nil
		}
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		key, value, ok := splitLine(line)
		if !ok {
			continue
		}
		switch key {
		case keyUserAgent:
			if !inAgents || cur == nil {
				r.groups = append(r.groups, group{})
				cur = &r.groups[len(r.groups)-1]
			}
			inAgents = true
			agent := strings.ToLower(value)
			if !strings.HasPrefix(agent, "*") {
				agent = ProductToken(agent)
			} else {
				agent = "*"
			}
			if agent != "" {
				cur.agents = append(cur.agents, agent)
			}
		case keyAllow, keyDisallow:
			inAgents = false
			if cur == nil || value == "" {
				continue // a rule outside any group, or an empty one (which allows all)
			}
			cur.rules = append(cur.rules, rule{allow: key == keyAllow, pattern: compile(value)})
		case keyCrawlDelay:
			if cur == nil {
				continue
			}
			if d, ok := parseDelay(value); ok {
				cur.crawlDelay, cur.hasDelay = d, true
			}
		case keySitemap:
			if value != "" && !seenSitemap[value] && len(r.sitemaps) < maxSitemaps {
				seenSitemap[value] = true
				r.sitemaps = append(r.sitemaps, value)
			}
		}
	}
	return r
}

// skipBOM drops a UTF-8 byte-order mark at the start of body, or the start of one (EF, or
// EF BB, as a file cut or mangled by a tool may begin), as Google's reference parser does, or
// the U+FFFD that a partial one becomes when invalid UTF-8 is cleaned (the processor stores
// robots.txt as valid text, and parses what it stored). Without this the first line's key
// would not be recognised, and a first user-agent line, with it its group's rules, would be
// lost.
func skipBOM(body []byte) []byte {
	const bom, replacement = "\xef\xbb\xbf", "\xef\xbf\xbd"
	if bytes.HasPrefix(body, []byte(replacement)) {
		return body[len(replacement):]
	}
	for i := 0; i < len(bom); i++ {
		if i == len(body) || body[i] != bom[i] {
			return body[i:]
		}
	}
	return body[len(bom):]
}

type key uint8

const (
	keyUnknown key = iota
	keyUserAgent
	keyAllow
	keyDisallow
	keyCrawlDelay
	keySitemap
)

var keys = map[string]key{
	"user-agent": keyUserAgent, "useragent": keyUserAgent, "user agent": keyUserAgent,
	"allow":    keyAllow,
	"disallow": keyDisallow, "dissallow": keyDisallow, "dissalow": keyDisallow, "disalow": keyDisallow,
	"diasllow": keyDisallow, "disallaw": keyDisallow,
	"crawl-delay": keyCrawlDelay, "crawldelay": keyCrawlDelay, "crawl delay": keyCrawlDelay,
	"sitemap": keySitemap, "site-map": keySitemap,
}

// splitLine splits "key: value" (a missing colon is tolerated when the key is followed by
// white space) and reports whether the key is known. The value is trimmed and is valid
// UTF-8 only if the input was.
func splitLine(line []byte) (key, string, bool) {
	s := strings.TrimSpace(string(line))
	if s == "" {
		return keyUnknown, "", false
	}
	var k, v string
	if i := strings.IndexByte(s, ':'); i >= 0 {
		k, v = s[:i], s[i+1:]
	} else if i := strings.IndexAny(s, " \t"); i >= 0 {
		k, v = s[:i], s[i+1:]
	} else {
		return keyUnknown, "", false
	}
	kk, ok := keys[strings.ToLower(strings.TrimSpace(k))]
	if !ok {
		return keyUnknown, "", false
	}
	return kk, strings.TrimSpace(v), true
}

func parseDelay(v string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f < 0 {
		return 0, false
	}
	if f >= MaxCrawlDelay.Seconds() {
		return MaxCrawlDelay, true
	}
	return time.Duration(f * float64(time.Second)), true
}

// compile normalises a rule's pattern: percent-encoding normalised, runs of '*' collapsed,
// and a '$' kept only at the end (elsewhere it is a literal, escaped so as not to be
// confused with the anchor).
func compile(p string) string {
	anchored := strings.HasSuffix(p, "$")
	if anchored {
		p = p[:len(p)-1]
	}
	p = strings.ReplaceAll(p, "$", "%24")
	for strings.Contains(p, "**") {
		p = strings.ReplaceAll(p, "**", "*")
	}
	p = normalize(p)
	if p == "" || p[0] != '/' && p[0] != '*' {
		p = "/" + p
	}
	if anchored {
		p += "$"
	}
	return p
}

// normalize brings a path or pattern to one percent-encoding: escapes of unreserved
// characters are decoded, other escapes get upper-case hex digits, a '%' that starts no
// escape becomes "%25", and bytes that are not
// allowed in a URL path or query (controls, space, non-ASCII, '"', '<', '>', '\', '^', '`',
// '{', '|', '}') are escaped. '*' and '$' are left alone.
func normalize(s string) string {
	var b *strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		var out string
		switch {
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			v := unhex(s[i+1])<<4 | unhex(s[i+2])
			if isUnreserved(v) {
				out = string(rune(v))
			} else {
				out = "%" + string(upperHex[v>>4]) + string(upperHex[v&15])
			}
			if b == nil && out == s[i:i+3] {
				i += 2
				continue
			}
			if b == nil {
				b = &strings.Builder{}
				b.WriteString(s[:i])
			}
			b.WriteString(out)
			i += 2
			continue
		case c == '%' || mustEscape(c): // a '%' that starts no escape is a literal
			out = "%" + string(upperHex[c>>4]) + string(upperHex[c&15])
		default:
			if b != nil {
				b.WriteByte(c)
			}
			continue
		}
		if b == nil {
			b = &strings.Builder{}
			b.WriteString(s[:i])
		}
		b.WriteString(out)
	}
	if b == nil {
		return s
	}
	return b.String()
}

const upperHex = "0123456789ABCDEF"

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func mustEscape(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return true
	}
	return strings.IndexByte("\"<>\\^`{|}", c) >= 0
}

// match reports whether the compiled pattern matches a prefix of path (or all of it, when the
// pattern ends in '$'). '*' matches any run of bytes. Matching each literal piece at its
// leftmost position is correct for patterns whose only wildcard is '*', and keeps the cost at
// O(len(pattern) × len(path)) whatever the input.
func match(pattern, path string) bool {
	anchored := strings.HasSuffix(pattern, "$")
	if anchored {
		pattern = pattern[:len(pattern)-1]
	}
	pieces := strings.Split(pattern, "*")
	first := pieces[0]
	if !strings.HasPrefix(path, first) {
		return false
	}
	if len(pieces) == 1 {
		return !anchored || len(path) == len(first)
	}
	rest := path[len(first):]
	last := pieces[len(pieces)-1]
	for _, p := range pieces[1 : len(pieces)-1] {
		i := strings.Index(rest, p)
		if i < 0 {
			return false
		}
		rest = rest[i+len(p):]
	}
	if anchored {
		return len(rest) >= len(last) && strings.HasSuffix(rest, last)
	}
	return strings.Contains(rest, last)
}
