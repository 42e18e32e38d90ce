package crawl

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/robots"
)

const testUA = "TrawlTest/1.0 (+https://example.org/contact)"

// testFetcher returns a Fetcher allowed to reach the loopback test servers, with cfg's zero
// fields defaulted.
func testFetcher(t *testing.T, cfg FetchConfig) *Fetcher {
	t.Helper()
	if cfg.UserAgent == "" {
		cfg.UserAgent = testUA
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 4
	}
	if !cfg.Guard.AllowPrivate && cfg.Guard.Ports == nil {
		cfg.Guard.AllowPrivate = true
	}
	f := NewFetcher(t.Context(), cfg)
	t.Cleanup(f.Close)
	return f
}

func testJob(u string) message.CrawlJob {
	return message.CrawlJob{
		Envelope: message.NewEnvelope(message.TypeCrawlJob),
		Kind:     message.KindPage, URLID: 7, TargetID: 3, URL: u, Depth: 2, Dispatch: 5,
	}
}

// recorder is an httptest server that records the paths and headers it was asked for.
type recorder struct {
	*httptest.Server
	mu       sync.Mutex
	paths    []string
	requests []*http.Request
}

func newRecorder(t *testing.T, h http.HandlerFunc) *recorder {
	t.Helper()
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.paths = append(r.paths, req.URL.RequestURI())
		r.requests = append(r.requests, req)
		r.mu.Unlock()
		h(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) Paths() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.paths...)
}

func (r *recorder) last() *http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[len(r.requests)-1]
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

const testHTML = `<!doctype html><html><head><title> The  Title </title>
<script>var hidden = 1;</script></head>
<body><h1>Heading</h1><p>Some visible text.</p>
<a href="/b">b</a> <a href="c?x=1#frag">c</a> <a href="http://other.example/x">ext</a>
<a href="javascript:alert(1)">js</a> <a href="data:text/html,hi">data</a> <a href="/b">dup</a>
</body></html>`

func TestFetchHTMLPage(t *testing.T) {
	t.Parallel()
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(30 * time.Millisecond) // so the duration has a lower bound to check
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", "Tue, 10 Nov 2026 10:00:00 GMT")
		_, _ = w.Write([]byte(testHTML))
	})
	f := testFetcher(t, FetchConfig{})
	job := testJob(srv.URL + "/dir/page")
	before := time.Now().UTC()
	res := f.Fetch(job, "w1")

	if res.Error != "" {
		t.Fatalf("Fetch error: %s (%s)", res.Error, res.ErrorClass)
	}
	want := message.FetchResult{
		Kind: message.KindPage, URLID: 7, TargetID: 3, URL: job.URL, Depth: 2, Dispatch: 5, Worker: "w1",
		FinalURL: job.URL, Status: 200, ContentType: "text/html; charset=utf-8",
		Title: "The Title", Text: "Heading\nSome visible text.\nb c ext js data dup",
		Links:        []string{srv.URL + "/b", srv.URL + "/dir/c?x=1", "http://other.example/x"},
		ETag:         `"v1"`,
		LastModified: "Tue, 10 Nov 2026 10:00:00 GMT",
		ContentHash:  sha([]byte(testHTML)),
		Size:         len(testHTML),
	}
	got := res
	got.Envelope, got.StartedAt, got.DurationMS = message.Envelope{}, time.Time{}, 0
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FetchResult mismatch (-want +got):\n%s", diff)
	}
	if res.Type != message.TypeFetchResult || res.V != message.Version || res.ID == "" || res.ID == job.ID {
		t.Errorf("envelope = %+v, want a fresh %s message", res.Envelope, message.TypeFetchResult)
	}
	if res.StartedAt.Before(before.Add(-time.Second)) || res.StartedAt.After(time.Now().UTC()) {
		t.Errorf("StartedAt = %v, not during the test", res.StartedAt)
	}
	if res.DurationMS < 30 {
		t.Errorf("DurationMS = %d, want at least the server's 30 ms delay", res.DurationMS)
	}
	req := srv.last()
	if ua := req.Header.Get("User-Agent"); ua != testUA {
		t.Errorf("User-Agent = %q, want %q", ua, testUA)
	}
	if a := req.Header.Get("Accept"); !strings.Contains(a, "text/html") {
		t.Errorf("Accept = %q, want text/html first", a)
	}
	if h := req.Header.Get("If-None-Match") + req.Header.Get("If-Modified-Since"); h != "" {
		t.Errorf("unconditional fetch sent validators %q", h)
	}
	if diff := cmp.Diff([]string{"/dir/page"}, srv.Paths()); diff != "" {
		t.Errorf("server saw (-want +got):\n%s", diff)
	}
}

func TestFetchBodyLimit(t *testing.T) {
	t.Parallel()
	const limit = 2048
	body := []byte("<html><title>big</title><body><a href=/early>e</a>" + strings.Repeat("word ", 2000) + `<a href="/late">l</a></body></html>`)
	exact := []byte("<title>exact</title>" + strings.Repeat("y", limit-len("<title>exact</title>")))
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		if r.URL.Path == "/exact" {
			_, _ = w.Write(exact)
			return
		}
		_, _ = w.Write(body)
	})
	f := testFetcher(t, FetchConfig{MaxBodyBytes: limit})

	res := f.Fetch(testJob(srv.URL+"/big"), "w")
	if res.Error != "" || res.Status != 200 {
		t.Fatalf("Fetch = status %d error %q", res.Status, res.Error)
	}
	if !res.Truncated || res.Size != limit || res.ContentHash != sha(body[:limit]) {
		t.Errorf("truncated=%t size=%d hash ok=%t, want true, %d, hash of the first %d bytes",
			res.Truncated, res.Size, res.ContentHash == sha(body[:limit]), limit, limit)
	}
	if res.Title != "big" || len(res.Text) > limit {
		t.Errorf("title %q, text %d bytes: want the kept part parsed", res.Title, len(res.Text))
	}
	if diff := cmp.Diff([]string{srv.URL + "/early"}, res.Links); diff != "" {
		t.Errorf("links of the kept part (-want +got):\n%s", diff)
	}

	res = f.Fetch(testJob(srv.URL+"/exact"), "w")
	if res.Truncated || res.Size != limit || res.Title != "exact" {
		t.Errorf("body of exactly the limit: truncated=%t size=%d title=%q, want false, %d, exact", res.Truncated, res.Size, res.Title, limit)
	}
}

func TestFetchNonHTMLIsNotParsed(t *testing.T) {
	t.Parallel()
	bait := `<html><title>bait</title><a href="/bait">x</a></html>`
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/file.pdf":
			w.Header().Set("Content-Type", "application/pdf")
			_, _ = w.Write([]byte("%PDF-1.4\n" + bait))
		case "/plain":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte(bait))
		case "/json":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"html":"` + strings.ReplaceAll(bait, `"`, `'`) + `"}`))
		case "/sniffed":
			w.Header()["Content-Type"] = nil // no Content-Type at all: sniffed as HTML
			_, _ = w.Write([]byte(bait))
		case "/xhtml":
			w.Header().Set("Content-Type", "application/xhtml+xml")
			_, _ = w.Write([]byte(bait))
		}
	})
	f := testFetcher(t, FetchConfig{})
	for _, path := range []string{"/file.pdf", "/plain", "/json"} {
		res := f.Fetch(testJob(srv.URL+path), "w")
		if res.Error != "" || res.Status != 200 || res.Size == 0 || res.ContentType == "" || res.ContentHash == "" {
			t.Errorf("%s: status %d size %d type %q hash %q error %q: want it recorded", path, res.Status, res.Size, res.ContentType, res.ContentHash, res.Error)
		}
		if res.Title != "" || res.Text != "" || len(res.Links) != 0 {
			t.Errorf("%s was parsed: title %q text %q links %q", path, res.Title, res.Text, res.Links)
		}
	}
	for _, path := range []string{"/sniffed", "/xhtml"} {
		res := f.Fetch(testJob(srv.URL+path), "w")
		if res.Title != "bait" || len(res.Links) != 1 {
			t.Errorf("%s: title %q links %q, want it parsed as HTML", path, res.Title, res.Links)
		}
	}
	for _, p := range srv.Paths() {
		if p == "/bait" {
			t.Errorf("the fetcher requested a link itself: %q", srv.Paths())
		}
	}
}

func TestFetchRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/a/b/moved":
			w.Header().Set("Location", "../target?b=2#frag")
			w.WriteHeader(http.StatusMovedPermanently)
			_, _ = w.Write([]byte(`<html><a href="/body-link">here</a></html>`))
		case "/a/found":
			http.Redirect(w, r, "http://Other.EXAMPLE:80/x", http.StatusFound)
		case "/a/js":
			w.Header().Set("Location", "javascript:alert(1)")
			w.WriteHeader(http.StatusTemporaryRedirect)
		case "/a/none":
			w.WriteHeader(http.StatusPermanentRedirect)
		default:
			_, _ = w.Write([]byte("target"))
		}
	})
	f := testFetcher(t, FetchConfig{})
	tests := []struct {
		path   string
		status int
		links  []string
	}{
		{"/a/b/moved", http.StatusMovedPermanently, []string{srv.URL + "/a/target?b=2"}},
		{"/a/found", http.StatusFound, []string{"http://other.example/x"}},
		{"/a/js", http.StatusTemporaryRedirect, nil},
		{"/a/none", http.StatusPermanentRedirect, nil},
	}
	for _, tc := range tests {
		res := f.Fetch(testJob(srv.URL+tc.path), "w")
		if res.Error != "" || res.Status != tc.status || res.FinalURL != srv.URL+tc.path {
			t.Errorf("%s: status %d final %q error %q, want %d on the same URL", tc.path, res.Status, res.FinalURL, res.Error, tc.status)
		}
		if diff := cmp.Diff(tc.links, res.Links); diff != "" {
			t.Errorf("%s links (-want +got):\n%s", tc.path, diff)
		}
	}
	if diff := cmp.Diff([]string{"/a/b/moved", "/a/found", "/a/js", "/a/none"}, srv.Paths()); diff != "" {
		t.Errorf("server saw (-want +got), a redirect was followed:\n%s", diff)
	}
}

func TestFetchConditional(t *testing.T) {
	t.Parallel()
	const etag, lastMod = `"abc"`, "Mon, 02 Nov 2026 08:00:00 GMT"
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", etag)
		w.Header().Set("Content-Type", "text/html")
		if r.Header.Get("If-None-Match") == etag || r.Header.Get("If-Modified-Since") == lastMod {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write([]byte("<title>fresh</title><a href=/x>x</a>"))
	})
	f := testFetcher(t, FetchConfig{})
	for _, tc := range []struct{ name, etag, lastMod string }{
		{"etag", etag, ""},
		{"last-modified", "", lastMod},
		{"both", etag, lastMod},
	} {
		job := testJob(srv.URL + "/p")
		job.ETag, job.LastModified = tc.etag, tc.lastMod
		res := f.Fetch(job, "w")
		if res.Error != "" || res.Status != http.StatusNotModified || res.Title != "" || len(res.Links) != 0 || res.ETag != etag || res.ContentHash != "" {
			t.Errorf("%s: status %d title %q links %q etag %q hash %q error %q, want 304 unchanged, without a content hash", tc.name, res.Status, res.Title, res.Links, res.ETag, res.ContentHash, res.Error)
		}
		req := srv.last()
		if req.Header.Get("If-None-Match") != tc.etag || req.Header.Get("If-Modified-Since") != tc.lastMod {
			t.Errorf("%s: sent If-None-Match %q If-Modified-Since %q", tc.name, req.Header.Get("If-None-Match"), req.Header.Get("If-Modified-Since"))
		}
	}
	res := f.Fetch(testJob(srv.URL+"/p"), "w")
	if res.Status != 200 || res.Title != "fresh" {
		t.Errorf("unconditional: status %d title %q, want 200 fresh", res.Status, res.Title)
	}
}

func TestFetchStatusesAndRetryAfter(t *testing.T) {
	t.Parallel()
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/429":
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
		case "/503":
			w.Header().Set("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/500":
			w.Header().Set("Retry-After", "60") // only 429 and 503 are honoured
			w.WriteHeader(http.StatusInternalServerError)
		case "/404":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte("<title>Not here</title><a href=/home>home</a>"))
		}
	})
	f := testFetcher(t, FetchConfig{})
	res := f.Fetch(testJob(srv.URL+"/429"), "w")
	if res.Status != 429 || res.RetryAfterS != 120 || res.Error != "" {
		t.Errorf("429: status %d retry-after %d error %q", res.Status, res.RetryAfterS, res.Error)
	}
	res = f.Fetch(testJob(srv.URL+"/503"), "w")
	if res.Status != 503 || res.RetryAfterS < 3500 || res.RetryAfterS > 3600 {
		t.Errorf("503 with a date an hour ahead: status %d retry-after %d", res.Status, res.RetryAfterS)
	}
	res = f.Fetch(testJob(srv.URL+"/500"), "w")
	if res.Status != 500 || res.RetryAfterS != 0 {
		t.Errorf("500: status %d retry-after %d, want 500 and 0", res.Status, res.RetryAfterS)
	}
	res = f.Fetch(testJob(srv.URL+"/404"), "w")
	if res.Status != 404 || res.Title != "Not here" || len(res.Links) != 1 || res.Error != "" {
		t.Errorf("404: status %d title %q links %q error %q, want the error page recorded", res.Status, res.Title, res.Links, res.Error)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want int
	}{
		{"", 0},
		{"0", 0},
		{" 30 ", 30},
		{"-5", 0},
		{"999999999", 86400},
		{"soon", 0},
		{"1.5", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{now.Add(72 * time.Hour).Format(http.TimeFormat), 86400},
		{"Wednesday, 25-Nov-26 12:10:00 GMT", 600}, // RFC 850
		{"Wed Nov 25 12:00:05 2026", 5},            // asctime
	}
	for _, tc := range tests {
		if got := retryAfter(tc.in, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestFetchErrorClasses(t *testing.T) {
	t.Parallel()
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + l.Addr().String() + "/"
	_ = l.Close()

	slow := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)

	f := testFetcher(t, FetchConfig{})
	impatient := testFetcher(t, FetchConfig{Timeout: 300 * time.Millisecond})
	tests := []struct {
		name, url, class string
		permanent        bool
		f                *Fetcher
	}{
		{"refused", closedURL, "refused", false, f},
		{"timeout", slow.URL + "/", "timeout", false, impatient},
		{"untrusted certificate", tlsSrv.URL + "/", "tls", false, f},
		{"unsupported scheme", "ftp://127.0.0.1/x", "invalid_url", true, f},
		// Hosts that end in a number but are no IPv4 address (the URL Standard), which
		// colly's parser fails with an error that would read as a retryable network error.
		{"five-part IPv4 host", "http://1.2.3.4.5/", "invalid_url", true, f},
		{"IPv4 part out of range", "http://127.0.0.256/", "invalid_url", true, f},
		{"IPv4 number too large", "http://0x100000000/", "invalid_url", true, f},
		{"name before a number", "http://foo.1/", "invalid_url", true, f},
	}
	for _, tc := range tests {
		res := tc.f.Fetch(testJob(tc.url), "w")
		if res.Error == "" || res.Status != 0 || res.ErrorClass != tc.class || res.Permanent != tc.permanent {
			t.Errorf("%s: status %d error %q class %q permanent %t, want class %q permanent %t",
				tc.name, res.Status, res.Error, res.ErrorClass, res.Permanent, tc.class, tc.permanent)
		}
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err       error
		class     string
		permanent bool
	}{
		{&net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}, "dns", true},
		{&net.DNSError{Err: "server misbehaving", Name: "x.example", IsTemporary: true}, "dns", false},
		{errors.Join(errors.New("dial"), ErrBlockedAddress), "blocked", true},
		{errors.New("read: connection reset by peer"), "network", false},
	}
	for _, tc := range tests {
		class, permanent := classify(tc.err)
		if class != tc.class || permanent != tc.permanent {
			t.Errorf("classify(%v) = %q, %t, want %q, %t", tc.err, class, permanent, tc.class, tc.permanent)
		}
	}
}

func TestFetchConfigDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want FetchConfig }{
		{FetchConfig{}, FetchConfig{Timeout: 30 * time.Second, ConnectTimeout: 10 * time.Second, FirstByteTimeout: 30 * time.Second, MaxBodyBytes: 10 << 20}},
		{FetchConfig{Timeout: 5 * time.Second}, FetchConfig{Timeout: 5 * time.Second, ConnectTimeout: 5 * time.Second, FirstByteTimeout: 5 * time.Second, MaxBodyBytes: 10 << 20}},
		{FetchConfig{Timeout: time.Minute, ConnectTimeout: time.Second, FirstByteTimeout: 2 * time.Second, MaxBodyBytes: 4096},
			FetchConfig{Timeout: time.Minute, ConnectTimeout: time.Second, FirstByteTimeout: 2 * time.Second, MaxBodyBytes: 4096}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, tc.in.withDefaults(), cmp.AllowUnexported(FetchConfig{})); diff != "" {
			t.Errorf("withDefaults(%v) (-want +got):\n%s", tc.in, diff)
		}
	}
}

// TestFetchNoFollow reads nofollow from the page's robots meta tags and its X-Robots-Tag
// headers, for every crawler or for this one by its product token, but never for a redirect,
// whose Location is the link to follow.
func TestFetchNoFollow(t *testing.T) {
	t.Parallel()
	token := robots.ProductToken(testUA)
	page := func(head string) string {
		return `<!doctype html><html><head>` + head + `</head><body><a href="/next">next</a></body></html>`
	}
	cases := []struct {
		name   string
		status int
		header []string // X-Robots-Tag values
		head   string
		want   bool
	}{
		{"plain page", 200, nil, "", false},
		{"meta robots nofollow", 200, nil, `<meta name="robots" content="noindex, nofollow">`, true},
		{"meta robots none", 200, nil, `<META NAME="Robots" CONTENT="NONE">`, true},
		{"meta robots index, follow", 200, nil, `<meta name="robots" content="index, follow">`, false},
		{"meta for this crawler", 200, nil, `<meta name="` + token + `" content="nofollow">`, true},
		{"meta for another crawler", 200, nil, `<meta name="otherbot" content="nofollow">`, false},
		{"meta inside a template is not the page's", 200, nil, `<template><meta name="robots" content="nofollow"></template>`, false},
		{"header nofollow", 200, []string{"nofollow"}, "", true},
		{"header for this crawler", 200, []string{"noarchive", token + ": nofollow"}, "", true},
		{"header for another crawler", 200, []string{"otherbot: nofollow"}, "", false},
		{"error page with meta nofollow", 404, nil, `<meta name="robots" content="nofollow">`, true},
		{"redirect says nofollow", 301, []string{"nofollow"}, `<meta name="robots" content="nofollow">`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				for _, v := range c.header {
					w.Header().Add("X-Robots-Tag", v)
				}
				if c.status == 301 {
					w.Header().Set("Location", "/moved")
				}
				w.WriteHeader(c.status)
				_, _ = w.Write([]byte(page(c.head)))
			})
			res := testFetcher(t, FetchConfig{}).Fetch(testJob(srv.URL+"/p"), "w1")
			if res.Error != "" {
				t.Fatalf("Fetch error: %s", res.Error)
			}
			if res.NoFollow != c.want {
				t.Errorf("NoFollow = %v, want %v", res.NoFollow, c.want)
			}
			if len(res.Links) != 1 {
				t.Errorf("Links = %q, want the one link whatever nofollow says (the processor decides)", res.Links)
			}
		})
	}
}
