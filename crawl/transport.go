package crawl

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// cutHeader is set on a response by boundedTransport when it cut the body short: "size" when
// the body was longer than the limit, "time" when the total fetch time ran out while reading
// it. Any value the server sends under that name is removed first.
const cutHeader = "X-Trawl-Cut"

// contentTypeHeader carries the response's Content-Type past colly, which would otherwise
// re-encode bodies according to its charset parameter before the fetcher sees them. The
// fetcher does its own charset handling (toUTF8), on HTML only.
const contentTypeHeader = "X-Trawl-Content-Type"

// errFetchTimeout is returned when the total fetch time runs out before the response headers
// arrive. It wraps context.DeadlineExceeded, so it classifies as a timeout.
var errFetchTimeout = fmt.Errorf("crawl: total fetch time exceeded: %w", context.DeadlineExceeded)

// boundedTransport wraps an http.Transport (which must have DisableCompression set) and
// bounds what one response can cost:
//
//   - it asks for gzip itself and decompresses it with the body limit applied to the
//     decompressed bytes, so a gzip bomb yields at most maxBody+1 bytes;
//   - it marks every response as uncompressed, so colly never decompresses a body on its own
//     (colly applies its size limit before its gunzip, which a bomb defeats);
//   - it ends the body after maxBody+1 bytes (one more than kept, so the cut is detectable);
//   - it ends the body when the total fetch time is over, keeping what arrived, so a server
//     that trickles bytes (slowloris) still yields a partial, flagged page.
type boundedTransport struct {
	base    *http.Transport
	maxBody int64 // unless the request's kind says otherwise
	total   time.Duration
	// sent records when requests carrying sentHeader were written, under the header's value.
	sent *sync.Map
}

// sentHeader asks boundedTransport to record when the request was written to the connection
// (clock), for every kind of fetch: pacing counts from then, the moment closest to the server's, not from the
// start of the fetch, which colly, dialling and the scheduler can separate from it by
// milliseconds that vary from one request to the next. The header itself is not sent.
const sentHeader = "X-Trawl-Sent"

// requestKind is what a robots.txt or a sitemap request does differently from a page's, carried
// in its context (Fetcher.request): its own body limit, and redirects followed. A page request
// (colly's) carries none, so it gets the Fetcher's MaxBodyBytes and follows no redirect.
type requestKind struct {
	maxBody   int64 // 0: the Fetcher's MaxBodyBytes
	redirects int
}

type requestKindKey struct{}

func kindOf(req *http.Request) requestKind {
	k, _ := req.Context().Value(requestKindKey{}).(requestKind)
	return k
}

// checkRedirect is the redirect policy of every fetch: follow as many redirects as the request's
// kind allows (none for a page: a 3xx is recorded with its Location as a link), every hop
// dialled through the SSRF guard.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > kindOf(req).redirects {
		return http.ErrUseLastResponse
	}
	return nil
}

func (t *boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	maxBody := t.maxBody
	if k := kindOf(req); k.maxBody > 0 {
		maxBody = k.maxBody
	}
	ctx, cancel := context.WithCancel(req.Context())
	var timedOut atomic.Bool
	timer := time.AfterFunc(t.total, func() {
		timedOut.Store(true)
		cancel()
	})
	req = req.Clone(ctx)
	if key := req.Header.Get(sentHeader); key != "" {
		req.Header.Del(sentHeader)
		if t.sent != nil {
			trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { t.sent.Store(key, time.Now()) }}
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		}
	}
	if req.Header.Get("Accept-Encoding") == "" {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		timer.Stop()
		cancel()
		if timedOut.Load() {
			return nil, errFetchTimeout
		}
		return nil, err
	}
	resp.Header.Del(cutHeader)
	resp.Header.Del(contentTypeHeader)
	if ct, ok := resp.Header["Content-Type"]; ok {
		resp.Header[contentTypeHeader] = ct
		resp.Header.Del("Content-Type")
	}
	b := &boundedBody{raw: resp.Body, header: resp.Header, left: maxBody + 1, timedOut: &timedOut, stop: func() {
		timer.Stop()
		cancel()
	}}
	b.r = resp.Body
	if isGzip(resp.Header.Get("Content-Encoding")) {
		b.gzip = true
		resp.Header.Del("Content-Encoding")
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
	}
	resp.Uncompressed = true
	resp.Body = b
	return resp, nil
}

func isGzip(contentEncoding string) bool {
	ce := strings.ToLower(strings.TrimSpace(contentEncoding))
	return ce == "gzip" || ce == "x-gzip"
}

// boundedBody is a response body cut by size and time; see boundedTransport.
type boundedBody struct {
	raw      io.ReadCloser
	r        io.Reader // raw, or the gzip reader on it
	gzip     bool      // r must become a gzip reader on first read
	header   http.Header
	left     int64
	timedOut *atomic.Bool
	stop     func()
	once     sync.Once
	done     bool
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	if b.gzip {
		b.gzip = false
		zr, err := gzip.NewReader(b.raw)
		if err != nil {
			return 0, b.fail(fmt.Errorf("crawl: gzip body: %w", err))
		}
		b.r = zr
	}
	if b.left <= 0 {
		b.header.Set(cutHeader, "size")
		b.done = true
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err != nil {
		return n, b.fail(err)
	}
	return n, nil
}

// fail turns a read error into what the reader returns: a plain end of body when the time
// ran out (what arrived is kept), the error otherwise.
func (b *boundedBody) fail(err error) error {
	if errors.Is(err, io.EOF) {
		b.done = true
		return io.EOF
	}
	if b.timedOut.Load() {
		b.header.Set(cutHeader, "time")
		b.done = true
		return io.EOF
	}
	return err
}

func (b *boundedBody) Close() error {
	b.once.Do(b.stop)
	return b.raw.Close()
}
