package testsite

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Paths served by Hostile. Each is a page that tries to hurt a crawler.
const (
	// HostileHuge answers 200 text/html with a 50 MB body (HostileHugeBytes).
	HostileHuge = "/huge"
	// HostileEndless answers 200 text/html with a body that never ends.
	HostileEndless = "/endless"
	// HostileSlowHeaders sends the status line, then one header byte every 50 ms, forever.
	HostileSlowHeaders = "/slow-headers"
	// HostileSlowBody sends the headers and a title at once, then one byte every 20 ms, forever.
	HostileSlowBody = "/slow-body"
	// HostileGzipBomb answers with Content-Encoding: gzip and a body of about 250 KB that
	// expands to HostileBombBytes.
	HostileGzipBomb = "/gzip-bomb"
	// HostileSitemapBomb is the same bomb served as a file: /sitemap.xml.gz with
	// Content-Type application/gzip and no Content-Encoding.
	HostileSitemapBomb = "/sitemap.xml.gz"
	// HostileInvalidUTF8 is an HTML page with invalid UTF-8 and NUL bytes in its title and text.
	HostileInvalidUTF8 = "/invalid-utf8"
	// HostileWrongCharset is labelled ISO-8859-1 but written in UTF-8 (HostileCharsetText).
	HostileWrongCharset = "/wrong-charset"
	// HostileWrongUTF8Label is labelled UTF-8 but written in ISO-8859-1 (HostileCharsetText).
	HostileWrongUTF8Label = "/wrong-utf8-label"
	// HostileMalformed is tag soup.
	HostileMalformed = "/malformed"
	// HostileManyLinks links to HostileManyLinksCount distinct pages.
	HostileManyLinks = "/many-links"
	// HostileLongURL links to a URL of HostileLongURLBytes bytes (which answers 200) and to
	// one of 3,000 bytes.
	HostileLongURL = "/long-url"
	// HostileSchemes has javascript:, data:, vbscript:, mailto: and tel: links besides one
	// normal link, HostileSchemesTarget.
	HostileSchemes = "/schemes"
	// HostileSchemesTarget is the one http link on HostileSchemes.
	HostileSchemesTarget = "/schemes-target"
	// HostileChain is the first of HostileChainHops redirects: /chain/0 redirects to
	// /chain/1 and so on; /chain/30 is a page.
	HostileChain = "/chain/0"
	// HostileNest is a directory whose every page links to "x/" relative to itself, so
	// following links nests forever: /nest/x/x/x/...
	HostileNest = "/nest/"
	// HostileSession links to itself with a new session id in the path (;jsessionid=) and in
	// the query (sid, PHPSESSID) on every request.
	HostileSession = "/session"
	// HostileCalendar is an infinite calendar: /calendar?month=N links to month N+1 and N-1.
	HostileCalendar = "/calendar?month=0"
	// HostileContentType answers an HTML page with an 8,000-byte Content-Type header, more than
	// a Postgres index entry can hold.
	HostileContentType = "/huge-content-type"
)

// Sizes of the hostile pages.
const (
	HostileHugeBytes      = 50 << 20
	HostileBombBytes      = 256 << 20
	HostileManyLinksCount = 10000
	HostileLongURLBytes   = 2000
	HostileChainHops      = 30
	// HostileCharsetText is the text of the two wrong-charset pages.
	HostileCharsetText = "Café naïve, crème brûlée à la française"
)

// Hostile is an httptest server serving the hostile pages. It records the request URIs.
type Hostile struct {
	srv     *httptest.Server
	mu      sync.Mutex
	seen    []string
	session int
}

// NewHostile starts a Hostile server on loopback.
func NewHostile() *Hostile {
	h := &Hostile{}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	return h
}

// URL returns the base URL, without a trailing slash.
func (h *Hostile) URL() string { return h.srv.URL }

// Close stops the server. Connections still held by slow handlers are closed.
func (h *Hostile) Close() {
	h.srv.CloseClientConnections()
	h.srv.Close()
}

// Requests returns the request URIs seen so far, in order.
func (h *Hostile) Requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.seen...)
}

// LongURLPath returns the path of the HostileLongURLBytes-byte URL on a server whose base URL
// is base.
func LongURLPath(base string) string {
	n := HostileLongURLBytes - len(base) - len("/long/")
	return "/long/" + strings.Repeat("a", n)
}

var (
	bombOnce sync.Once
	bomb     []byte
)

// Gzip compresses b as one gzip member (best compression). Writing to memory cannot fail.
func Gzip(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// gzipBomb returns a gzip stream that expands to HostileBombBytes of HTML. It is a
// multi-member stream (RFC 1952 allows concatenated members, and gzip readers read them all),
// so building it costs one compression of 1 MiB.
func gzipBomb() []byte {
	bombOnce.Do(func() {
		member := Gzip
		head := []byte("<html><head><title>bomb</title></head><body><p>")
		mib := member(bytes.Repeat([]byte{' '}, 1<<20))
		out := member(head)
		for range HostileBombBytes >> 20 {
			out = append(out, mib...)
		}
		bomb = out
	})
	return bomb
}

func (h *Hostile) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.seen = append(h.seen, r.URL.RequestURI())
	h.session++
	session := strconv.Itoa(h.session)
	h.mu.Unlock()
	hdr := w.Header()
	html := func(body string) {
		hdr.Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(body))
	}
	switch p := r.URL.Path; {
	case p == HostileHuge:
		hdr.Set("Content-Type", "text/html")
		hdr.Set("Content-Length", strconv.Itoa(HostileHugeBytes))
		head := []byte("<html><head><title>huge</title></head><body><a href=\"/after-huge\">x</a><p>")
		_, _ = w.Write(head)
		chunk := bytes.Repeat([]byte("lorem ipsum "), 1<<16/12)
		for left := HostileHugeBytes - len(head); left > 0; {
			n := min(left, len(chunk))
			if _, err := w.Write(chunk[:n]); err != nil {
				return
			}
			left -= n
		}
	case p == HostileEndless:
		hdr.Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html><head><title>endless</title></head><body>"))
		chunk := bytes.Repeat([]byte("<p>more and more</p>"), 1000)
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	case p == HostileSlowHeaders:
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nX-Slow: ")
		_ = buf.Flush()
		for {
			if _, err := conn.Write([]byte("a")); err != nil {
				return
			}
			select {
			case <-time.After(50 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	case p == HostileSlowBody:
		hdr.Set("Content-Type", "text/html")
		rc := http.NewResponseController(w)
		_, _ = w.Write([]byte("<html><head><title>slow</title></head><body><a href=\"/after-slow\">x</a><p>"))
		for {
			if rc.Flush() != nil {
				return
			}
			select {
			case <-time.After(20 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
			if _, err := w.Write([]byte("z")); err != nil {
				return
			}
		}
	case p == HostileGzipBomb:
		hdr.Set("Content-Type", "text/html")
		hdr.Set("Content-Encoding", "gzip")
		_, _ = w.Write(gzipBomb())
	case p == HostileSitemapBomb:
		hdr.Set("Content-Type", "application/gzip")
		_, _ = w.Write(gzipBomb())
	case p == HostileInvalidUTF8:
		hdr.Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<html><head><title>bad\x00 \xff\xfe title \xc3\xa9</title></head><body><p>nul\x00here \xc3\x28 \xed\xa0\x80 end</p><a href=\"/ok\x00\">x</a></body></html>"))
	case p == HostileWrongCharset:
		hdr.Set("Content-Type", "text/html; charset=iso-8859-1")
		_, _ = w.Write([]byte("<html><head><title>" + HostileCharsetText + "</title></head><body><p>" + HostileCharsetText + "</p></body></html>"))
	case p == HostileWrongUTF8Label:
		hdr.Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(latin1("<html><head><title>" + HostileCharsetText + "</title></head><body><p>" + strings.Repeat(HostileCharsetText+". ", 20) + "</p></body></html>"))
	case p == HostileMalformed:
		html(`<html><head><title>mal<formed</title><body><p>open <b><i>nested</b></i> <a href="/m1">one<a href='/m2'>two</a> <a href=/m3 <p>three</p><table><tr><td>cell<td>cell</table><!-- unclosed comment <a href="/hidden">`)
	case p == HostileManyLinks:
		var b strings.Builder
		b.WriteString("<html><head><title>many links</title></head><body>")
		for i := range HostileManyLinksCount {
			b.WriteString(`<a href="/many/`)
			b.WriteString(strconv.Itoa(i))
			b.WriteString(`">l</a> `)
		}
		html(b.String())
	case p == HostileLongURL:
		base := "http://" + r.Host
		html(`<html><head><title>long</title></head><body><a href="` + LongURLPath(base) + `">long</a><a href="/toolong/` + strings.Repeat("b", 3000) + `">too long</a></body></html>`)
	case strings.HasPrefix(p, "/long/"):
		html("<html><head><title>long target</title></head><body>reached</body></html>")
	case p == HostileContentType:
		w.Header().Set("Content-Type", "text/html; charset=utf-8; x="+strings.Repeat("a", 8000))
		_, _ = w.Write([]byte("<html><head><title>typed</title></head><body>text</body></html>"))
	case p == HostileSchemes:
		html(`<html><body><a href="javascript:alert(1)">js</a><a href="  JavaScript:void(0)">js2</a>` +
			`<a href="data:text/html;base64,PGEgaHJlZj0iL2RhdGEtYmFpdCI+">data</a><a href="vbscript:x">vb</a>` +
			`<a href="mailto:a@example.com">mail</a><a href="tel:+123">tel</a><a href="` + HostileSchemesTarget + `">ok</a></body></html>`)
	case strings.HasPrefix(p, "/chain/"):
		n, err := strconv.Atoi(strings.TrimPrefix(p, "/chain/"))
		if err != nil || n < 0 || n > HostileChainHops {
			http.NotFound(w, r)
			return
		}
		if n == HostileChainHops {
			html("<html><head><title>end of chain</title></head><body>end</body></html>")
			return
		}
		http.Redirect(w, r, "/chain/"+strconv.Itoa(n+1), http.StatusFound)
	case strings.HasPrefix(p, HostileNest):
		html(`<html><head><title>nest</title></head><body><a href="x/">deeper</a></body></html>`)
	case strings.HasPrefix(p, HostileSession):
		html(`<html><head><title>session</title></head><body><a href="/session;jsessionid=` + session +
			`?sid=` + session + `&amp;PHPSESSID=` + session + `">again</a></body></html>`)
	case p == "/calendar":
		m, _ := strconv.Atoi(r.URL.Query().Get("month"))
		html(`<html><head><title>month ` + strconv.Itoa(m) + `</title></head><body><a href="?month=` + strconv.Itoa(m+1) +
			`">next</a> <a href="?month=` + strconv.Itoa(m-1) + `">previous</a></body></html>`)
	default:
		html("<html><head><title>plain</title></head><body>plain</body></html>")
	}
}

// latin1 encodes s, which must be within Latin-1, as ISO-8859-1.
func latin1(s string) []byte {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = append(b, byte(r))
	}
	return b
}
