package crawl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gocolly/colly/v2"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/robots"
	"github.com/trawlhq/trawl/sanitize"
)

// FetchConfig configures a Fetcher.
type FetchConfig struct {
	// UserAgent is sent with every request; it should carry a contact URL.
	UserAgent string
	// Timeout bounds a whole fetch, body included. When it runs out while the body is being
	// read, what arrived is kept and the page is flagged truncated.
	Timeout time.Duration
	// ConnectTimeout bounds the TCP connect and the TLS handshake, each; zero means
	// min(10s, Timeout).
	ConnectTimeout time.Duration
	// FirstByteTimeout bounds the wait for the response headers once the request is sent;
	// zero means Timeout.
	FirstByteTimeout time.Duration
	// MaxBodyBytes is the most body bytes kept (after gzip decoding); a longer body is cut and
	// flagged truncated.
	MaxBodyBytes int
	Concurrency  int
	Guard        Guard
	Limits       ExtractLimits

	// resolver, when set, resolves host names instead of the system's resolver (tests use
	// one that never sends a query).
	resolver *net.Resolver
}

func (c FetchConfig) withDefaults() FetchConfig {
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = min(10*time.Second, c.Timeout)
	}
	if c.FirstByteTimeout <= 0 {
		c.FirstByteTimeout = c.Timeout
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 10 << 20
	}
	if c.Limits.RobotsToken == "" {
		c.Limits.RobotsToken = robots.ProductToken(c.UserAgent)
	}
	return c
}

// Fetcher fetches single URLs: pages with colly, robots.txt files and sitemaps with f.client. All
// three go the one way (docs/adr/0052-one-fetch-path.md): the same http.Client settings, so the
// same transport, SSRF guard (in the dialer), timeouts, gzip handling and body limits
// (boundedTransport), redirect policy (checkRedirect), user agent (header) and timing (clock).
// What differs between them is their requestKind: a page follows no redirect (a 3xx is recorded
// with its Location as the page's only link, so the redirect target goes through the frontier's
// scope check and deduplication like any other link) and is cut at MaxBodyBytes; robots.txt
// follows MaxRobotsRedirects and is cut at robots.MaxBytes; a sitemap follows
// MaxSitemapRedirects. robots.txt and pacing are decided by the scheduler, globally; the
// collector's own robots handling and visited set are off.
//
// Charset handling is the Fetcher's own (toUTF8), applied to HTML only.
type Fetcher struct {
	c      *colly.Collector
	client *http.Client // robots.txt and sitemaps; colly has a copy with a cookie jar
	tr     *http.Transport
	cfg    FetchConfig
	canon  crawlurl.Canonicalizer
	sent   *sync.Map // boundedTransport.sent
	clocks atomic.Uint64
}

// timeoutGrace is how much longer than FetchConfig.Timeout the HTTP client waits before it
// gives up on its own; the boundedTransport normally ends the fetch first, keeping the body.
const timeoutGrace = 5 * time.Second

// NewFetcher builds a Fetcher whose page requests are cancelled when ctx ends.
func NewFetcher(ctx context.Context, cfg FetchConfig) *Fetcher {
	cfg = cfg.withDefaults()
	c := colly.NewCollector(
		colly.UserAgent(cfg.UserAgent),
		colly.AllowURLRevisit(),
		colly.IgnoreRobotsTxt(),
		colly.ParseHTTPErrorResponse(),
		colly.MaxBodySize(cfg.MaxBodyBytes+1), // one byte more tells us the body was cut
		colly.StdlibContext(ctx),
	)
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second, Control: cfg.Guard.Control, Resolver: cfg.resolver}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			address, err := numericAddress(address)
			if err != nil {
				return nil, err
			}
			return dialer.DialContext(ctx, network, address)
		},
		MaxIdleConns:           4 * max(cfg.Concurrency, 1),
		MaxIdleConnsPerHost:    2 * max(cfg.Concurrency, 1),
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    cfg.ConnectTimeout,
		ResponseHeaderTimeout:  cfg.FirstByteTimeout,
		ExpectContinueTimeout:  time.Second,
		ForceAttemptHTTP2:      true,
		DisableCompression:     true, // boundedTransport decompresses, within the body limit
		MaxResponseHeaderBytes: 256 << 10,
	}
	// HTTP(S)_PROXY is honoured only with the guard off: the guard judges the address the
	// crawler dials, which through a proxy would be the proxy's, not the target's.
	if cfg.Guard.AllowPrivate {
		tr.Proxy = http.ProxyFromEnvironment
	}
	sent := &sync.Map{}
	client := &http.Client{
		Transport:     &boundedTransport{base: tr, maxBody: int64(cfg.MaxBodyBytes), total: cfg.Timeout, sent: sent},
		Timeout:       cfg.Timeout + timeoutGrace,
		CheckRedirect: checkRedirect,
	}
	// Pages keep the cookie jar colly gives every collector, as they always have; robots.txt
	// and sitemaps have never sent cookies.
	pages := *client
	pages.Jar, _ = cookiejar.New(nil)
	c.SetClient(&pages)
	c.OnResponse(func(r *colly.Response) { r.Ctx.Put("response", r) })
	c.OnError(func(r *colly.Response, err error) { r.Ctx.Put("error", err) })
	return &Fetcher{c: c, client: client, tr: tr, cfg: cfg, canon: crawlurl.Default, sent: sent}
}

// Close closes the idle connections the Fetcher keeps. It is safe to call more than once.
func (f *Fetcher) Close() { f.tr.CloseIdleConnections() }

// header is what every request sends, whatever its kind: the user agent, the types it accepts,
// and the key under which the transport notes when it was written (clock).
func (f *Fetcher) header(accept string) (http.Header, clock) {
	c := clock{sent: f.sent, key: strconv.FormatUint(f.clocks.Add(1), 36), start: time.Now()}
	hdr := http.Header{}
	hdr.Set("User-Agent", f.cfg.UserAgent)
	hdr.Set("Accept", accept)
	hdr.Set(sentHeader, c.key)
	return hdr, c
}

// clock times one fetch the same way for every kind. A fetch starts when its request is
// written to the connection (what the server sees; the time before it, in colly, dialling or
// waiting for the CPU, varies), or when it was called if no request was written; after
// redirects, when the last one was written. Its duration is measured on the monotonic clock
// and rounded down, so that the processor's bound on the start (its now minus DurationMS) is
// never early (store.ApplyResults).
type clock struct {
	sent  *sync.Map
	key   string
	start time.Time
}

// stop returns when the fetch started (UTC), how long it took, and when its request was
// written on this process's monotonic clock (zero if it never was).
func (c clock) stop() (started time.Time, took time.Duration, sent time.Time) {
	end := time.Now()
	start := c.start
	if v, ok := c.sent.LoadAndDelete(c.key); ok {
		sent = v.(time.Time)
		start = sent
	}
	return start.UTC(), end.Sub(start), sent
}

// request makes the GET of a robots.txt or sitemap fetch, for f.client: the request a page
// fetch makes through colly, with the same header, and kind's body limit and redirects. The
// caller stops the clock once it has read the body.
func (f *Fetcher) request(ctx context.Context, rawURL, accept string, kind requestKind) (*http.Request, clock, error) {
	hdr, c := f.header(accept)
	req, err := http.NewRequestWithContext(context.WithValue(ctx, requestKindKey{}, kind), http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, c, err
	}
	req.Header = hdr
	return req, c, nil
}

// Fetch fetches the page of job.URL and describes the outcome. It never returns an error:
// failures are part of the result, for the processor to record and retry.
func (f *Fetcher) Fetch(job message.CrawlJob, worker string) message.FetchResult {
	res, _ := f.fetch(job, worker)
	return res
}

// fetchJob fetches a job of any kind, and also reports when its request was written to the
// connection, on this process's monotonic clock (zero if it never was).
func (f *Fetcher) fetchJob(ctx context.Context, job message.CrawlJob, worker string) (message.FetchResult, time.Time) {
	switch job.Kind {
	case message.KindRobots:
		return f.robotsJob(ctx, job, worker)
	case message.KindSitemap:
		return f.sitemapJob(ctx, job, worker)
	}
	return f.fetch(job, worker)
}

// fetch is Fetch, and also reports when the request was written (fetchJob).
func (f *Fetcher) fetch(job message.CrawlJob, worker string) (res message.FetchResult, sent time.Time) {
	res = message.FetchResult{
		Envelope: message.NewEnvelope(message.TypeFetchResult),
		Kind:     job.Kind, URLID: job.URLID, TargetID: job.TargetID, URL: job.URL,
		Depth: job.Depth, Dispatch: job.Dispatch, Worker: worker,
	}
	hdr, clock := f.header("text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
	if job.ETag != "" {
		hdr.Set("If-None-Match", job.ETag)
	}
	if job.LastModified != "" {
		hdr.Set("If-Modified-Since", job.LastModified)
	}
	if _, err := f.canon.Canonicalize(job.URL); err != nil {
		// A URL the frontier would not admit, such as one stored before a rule was added
		// (a host "1.2.3.4.5" is no IPv4 address), will never fetch: fail it for good rather
		// than retrying whatever colly's own parser makes of it.
		res.StartedAt = time.Now().UTC()
		res.Error = sanitize.Text(err.Error())
		res.ErrorClass, res.Permanent = "invalid_url", true
		return res, time.Time{}
	}
	cctx := colly.NewContext()
	err := f.c.Request(http.MethodGet, job.URL, nil, cctx, hdr)
	var took time.Duration
	res.StartedAt, took, sent = clock.stop()
	res.DurationMS = int(took.Milliseconds())
	resp, _ := cctx.GetAny("response").(*colly.Response)
	if resp == nil {
		if err == nil {
			err, _ = cctx.GetAny("error").(error)
		}
		if err == nil {
			err = errors.New("no response")
		}
		res.Error = sanitize.Text(err.Error())
		res.ErrorClass, res.Permanent = classify(err)
		return res, sent
	}
	f.describe(&res, resp)
	return res, sent
}

func (f *Fetcher) describe(res *message.FetchResult, resp *colly.Response) {
	res.Status = resp.StatusCode
	res.FinalURL = resp.Request.URL.String()
	h := resp.Headers
	res.ContentType = sanitize.Clip(h.Get(contentTypeHeader), message.MaxContentTypeBytes)
	res.ETag = sanitize.Text(h.Get("ETag"))
	res.LastModified = sanitize.Text(h.Get("Last-Modified"))
	body := resp.Body
	if len(body) > f.cfg.MaxBodyBytes {
		body = body[:f.cfg.MaxBodyBytes]
		res.Truncated = true
	}
	if h.Get(cutHeader) != "" {
		res.Truncated = true // the total time ran out while the body was arriving
	}
	res.Size = len(body)
	if res.Status != http.StatusNotModified {
		// A 304 has no body: the stored content, and its hash, are unchanged.
		sum := sha256.Sum256(body)
		res.ContentHash = hex.EncodeToString(sum[:])
	}
	base := resp.Request.URL
	switch {
	case res.Status >= 300 && res.Status < 400:
		if loc := h.Get("Location"); loc != "" {
			if u, ok := f.canon.Resolve(base, loc); ok {
				res.Links = []string{u}
			}
		}
	case res.Status == http.StatusTooManyRequests || res.Status == http.StatusServiceUnavailable:
		res.RetryAfterS = retryAfter(h.Get("Retry-After"), time.Now())
	}
	if isHTML(res.ContentType, body) && res.Status != http.StatusNotModified {
		utf8Body, _ := toUTF8(body, res.ContentType)
		ex := ExtractHTML(utf8Body, base, f.canon, f.cfg.Limits)
		res.Title, res.Text = ex.Title, ex.Text
		if res.Status < 300 || res.Status >= 400 {
			res.Links = ex.Links
			// A redirect's Location is followed whatever its body or headers say.
			tok := f.cfg.Limits.RobotsToken
			res.NoFollow = robots.NoFollow(ex.MetaRobots, tok, false) || robots.NoFollow(h.Values("X-Robots-Tag"), tok, true)
		}
		res.Truncated = res.Truncated || ex.TextTruncated || ex.LinksTruncated
	}
}

func isHTML(contentType string, body []byte) bool {
	if contentType == "" {
		contentType = http.DetectContentType(body)
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return strings.Contains(strings.ToLower(contentType), "html")
	}
	return mt == "text/html" || mt == "application/xhtml+xml"
}

// retryAfter parses a Retry-After header (seconds or an HTTP date), capped at a day.
func retryAfter(v string, now time.Time) int {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		return min(max(s, 0), 86400)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(int(t.Sub(now).Seconds()), 0), 86400)
	}
	return 0
}

// classify names an error's class for grouping and says whether retrying is pointless.
func classify(err error) (class string, permanent bool) {
	var dnsErr *net.DNSError
	var urlErr *url.Error
	switch {
	case errors.Is(err, ErrBlockedAddress):
		return "blocked", true
	case errors.As(err, &dnsErr):
		return "dns", dnsErr.IsNotFound
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout", false
	case errors.As(err, &urlErr) && urlErr.Timeout():
		return "timeout", false
	case errors.Is(err, context.Canceled):
		return "cancelled", false
	case strings.Contains(err.Error(), "connection refused"):
		return "refused", false
	case strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "x509:"):
		return "tls", false
	case strings.Contains(err.Error(), "unsupported protocol scheme"), strings.Contains(err.Error(), "invalid URL"):
		return "invalid_url", true
	}
	return "network", false
}

// String makes a FetchConfig printable in logs without surprises.
func (c FetchConfig) String() string {
	return fmt.Sprintf("timeout=%s max_body=%d concurrency=%d allow_private=%t", c.Timeout, c.MaxBodyBytes, c.Concurrency, c.Guard.AllowPrivate)
}
