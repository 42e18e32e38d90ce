package testsite

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/html"
)

// noRedirectClient returns a client that does not follow redirects.
func noRedirectClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func get(t testing.TB, c *http.Client, u string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", u, err)
	}
	return resp, body
}

// canonical resolves ref against base the way a crawler canonicaliser would:
// lowercase scheme and host, no fragment, no default port, "/" for an empty
// path. ok is false for non-http(s) schemes and unparsable refs.
func canonical(base *url.URL, ref string) (u *url.URL, ok bool) {
	r, err := url.Parse(ref)
	if err != nil {
		return nil, false
	}
	u = base.ResolveReference(r)
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, false
	}
	u.Host = strings.ToLower(u.Host)
	if (u.Scheme == "http" && u.Port() == "80") || (u.Scheme == "https" && u.Port() == "443") {
		u.Host = u.Hostname()
	}
	u.Fragment, u.RawFragment = "", ""
	if u.Path == "" {
		u.Path, u.RawPath = "/", ""
	}
	if u.RawQuery != "" { // parameters sorted by name, as Trawl's canonical URLs have them
		params := strings.Split(u.RawQuery, "&")
		slices.SortStableFunc(params, func(a, b string) int {
			ka, _, _ := strings.Cut(a, "=")
			kb, _, _ := strings.Cut(b, "=")
			return strings.Compare(ka, kb)
		})
		u.RawQuery = strings.Join(params, "&")
	}
	return u, true
}

// extractHrefs returns the href attributes of all <a> elements.
func extractHrefs(t testing.TB, body []byte) []string {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	var hrefs []string
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode || n.Data != "a" {
			continue
		}
		for _, a := range n.Attr {
			if a.Key == "href" {
				hrefs = append(hrefs, a.Val)
			}
		}
	}
	return hrefs
}

type crawlResult struct {
	stored    []string       // canonical URLs stored, sorted
	external  map[string]int // external canonical URLs seen as links (not fetched)
	fragments int            // hrefs seen with a fragment
	upperAbs  int            // hrefs seen with "HTTP://"
}

// crawl is a minimal reference crawler: BFS from the seed over real HTTP,
// same host only, fragments stripped, redirects followed as separate URLs,
// 5xx retried, only 200 text/html responses parsed.
func crawl(t *testing.T, s *Site) crawlResult {
	t.Helper()
	c := noRedirectClient()
	site, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	res := crawlResult{external: map[string]int{}}
	seen := map[string]bool{s.SeedURL(): true}
	queue := []string{s.SeedURL()}
	enqueue := func(u *url.URL) {
		if u.Host != site.Host {
			res.external[u.String()]++
			return
		}
		if k := u.String(); !seen[k] {
			seen[k] = true
			queue = append(queue, k)
		}
	}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		var (
			resp *http.Response
			body []byte
		)
		for attempt := 0; ; attempt++ {
			resp, body = get(t, c, cur)
			if resp.StatusCode < 500 || attempt == 4 {
				break
			}
		}
		res.stored = append(res.stored, cur)
		base, _ := url.Parse(cur)
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			if u, ok := canonical(base, resp.Header.Get("Location")); ok {
				enqueue(u)
			}
		case resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") &&
			!bytes.Contains(body, []byte(NoFollowMeta)):
			for _, h := range extractHrefs(t, body) {
				if strings.Contains(h, "#") {
					res.fragments++
				}
				if strings.HasPrefix(h, "HTTP://") {
					res.upperAbs++
				}
				if u, ok := canonical(base, h); ok {
					enqueue(u)
				}
			}
		}
	}
	slices.Sort(res.stored)
	return res
}

func TestCrawlMatchesExpected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
	}{
		{"defaults", Options{}},
		{"one page", Options{Pages: 1}},
		{"chain only", Options{Pages: 40, LinksPerPage: 1, TextBytes: 100}},
		{"few links traps", Options{Pages: 30, LinksPerPage: 3, TextBytes: 200, Traps: true, Seed: 7}},
		{"traps", Options{Traps: true}},
		{"traps one page", Options{Pages: 1, Traps: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ext := NewCounter()
			defer ext.Close()
			if tc.opts.Traps {
				tc.opts.ExternalURL = ext.URL()
			}
			s := New(tc.opts)
			defer s.Close()

			res := crawl(t, s)
			want := s.ExpectedURLs()
			if diff := cmp.Diff(want, res.stored); diff != "" {
				t.Errorf("crawled URLs mismatch (-want +got):\n%s", diff)
			}
			if lpp := s.Options().LinksPerPage; lpp >= 7 && (res.fragments == 0 || res.upperAbs == 0) {
				t.Errorf("crawl saw %d fragment hrefs and %d HTTP:// hrefs, want some of each", res.fragments, res.upperAbs)
			}
			if got := ext.Hits(); got != 0 {
				t.Errorf("external host got %d hits, want 0", got)
			}

			// Each expected path fetched exactly once (/broken: once per
			// failure plus the success), nothing else requested.
			wantHits := map[string]int{}
			for _, u := range want {
				wantHits[strings.TrimPrefix(u, s.URL())] = 1
			}
			if tc.opts.Traps {
				wantHits[PathBroken] = BrokenFailures + 1
			}
			if diff := cmp.Diff(wantHits, s.Hits()); diff != "" {
				t.Errorf("Hits mismatch (-want +got):\n%s", diff)
			}
			total := 0
			for _, n := range wantHits {
				total += n
			}
			if got := s.TotalHits(); got != total {
				t.Errorf("TotalHits = %d, want %d", got, total)
			}

			var wantExt map[string]int
			if tc.opts.Traps {
				wantExt = map[string]int{ext.URL() + "/ext/1": 0, ext.URL() + "/ext/2": 0}
			}
			gotExt := map[string]int{}
			for u := range res.external {
				gotExt[u] = 0
			}
			if len(wantExt) == 0 {
				wantExt = map[string]int{}
			}
			if diff := cmp.Diff(wantExt, gotExt); diff != "" {
				t.Errorf("external links seen mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExpectedURLs(t *testing.T) {
	t.Parallel()
	s := New(Options{Pages: 3, Traps: true, ExternalURL: "http://example.invalid"})
	defer s.Close()
	b := s.URL()
	want := []string{
		b + "/",
		b + PathBroken,
		b + PathPDF,
		b + PathMissing,
		b + "/p/1",
		b + "/p/2",
		b + PathRedirect,
		b + PathRedirectTarget,
		b + PathNoFollow,
		b + "/q?a=1&b=2",
		b + "/q?page=1",
		b + "/q?page=2",
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, s.ExpectedURLs()); diff != "" {
		t.Errorf("ExpectedURLs mismatch (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(b, "http://127.0.0.1:") && !strings.HasPrefix(b, "http://[::1]:") {
		t.Errorf("URL() = %q, want loopback http URL", b)
	}
	if got, want := s.SeedURL(), b+"/"; got != want {
		t.Errorf("SeedURL() = %q, want %q", got, want)
	}
	// Caller may not mutate internal state.
	s.ExpectedURLs()[0] = "x"
	if s.ExpectedURLs()[0] == "x" {
		t.Error("ExpectedURLs returned internal slice")
	}
}

// normalizedBodies fetches every expected URL (redirect not followed) and
// returns status + body with the site's own address replaced, keyed by path.
func normalizedBodies(t *testing.T, s *Site) map[string]string {
	t.Helper()
	c := noRedirectClient()
	host := strings.TrimPrefix(s.URL(), "http://")
	m := map[string]string{}
	for _, u := range s.ExpectedURLs() {
		resp, body := get(t, c, u)
		m[strings.TrimPrefix(u, s.URL())] = fmt.Sprintf("%d %s\n%s", resp.StatusCode, resp.Header.Get("Etag"),
			strings.ReplaceAll(string(body), host, "HOST"))
	}
	return m
}

func TestDeterminism(t *testing.T) {
	t.Parallel()
	opts := Options{Pages: 60, TextBytes: 500, Traps: true, Seed: 42}
	a, b := New(opts), New(opts)
	defer a.Close()
	defer b.Close()
	ba, bb := normalizedBodies(t, a), normalizedBodies(t, b)
	for p := range ba {
		// ETags hash the body, which embeds the port in absolute links.
		ba[p] = regexp.MustCompile(`(?m)^(\d+) \S*$`).ReplaceAllString(ba[p], "$1")
		bb[p] = regexp.MustCompile(`(?m)^(\d+) \S*$`).ReplaceAllString(bb[p], "$1")
	}
	if diff := cmp.Diff(ba, bb); diff != "" {
		t.Errorf("same seed, different site (-want +got):\n%s", diff)
	}

	opts.Seed = 43
	c := New(opts)
	defer c.Close()
	bc := normalizedBodies(t, c)
	same := 0
	for p := range ba {
		if strings.HasPrefix(p, "/p/") && ba[p] == bc[p] {
			same++
		}
	}
	if same != 0 {
		t.Errorf("seed 42 and 43 share %d identical pages, want 0", same)
	}

	// Same seed, same link graph regardless of port: rendering twice in one
	// site is identical byte-for-byte.
	if !bytes.Equal(a.renderPage(5), a.renderPage(5)) {
		t.Error("renderPage is not deterministic")
	}
}

func TestPageContent(t *testing.T) {
	t.Parallel()
	const pages, textBytes = 50, 3000
	s := New(Options{Pages: pages, TextBytes: textBytes, LinksPerPage: 12})
	defer s.Close()
	c := noRedirectClient()
	uniq := regexp.MustCompile(`uniqword\w*`)
	title := regexp.MustCompile(`<title>(.*?)</title>`)
	para := regexp.MustCompile(`<p>([^<]*)</p>`)
	for i := range pages {
		resp, body := get(t, c, s.PageURL(i))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("page %d: status %d", i, resp.StatusCode)
		}
		if got, want := resp.Header.Get("Content-Type"), "text/html; charset=utf-8"; got != want {
			t.Errorf("page %d: Content-Type %q, want %q", i, got, want)
		}
		if diff := cmp.Diff([]string{UniqWord(i)}, uniq.FindAllString(string(body), -1)); diff != "" {
			t.Errorf("page %d: unique words (-want +got):\n%s", i, diff)
		}
		if m := title.FindSubmatch(body); m == nil || string(m[1]) != fmt.Sprintf("Page %d", i) {
			t.Errorf("page %d: title %q", i, m)
		}
		m := para.FindSubmatch(body)
		if m == nil {
			t.Fatalf("page %d: no text paragraph", i)
		}
		if n := len(m[1]); n < textBytes || n > textBytes+20 {
			t.Errorf("page %d: text is %d bytes, want about %d", i, n, textBytes)
		}
		for _, w := range strings.Fields(string(m[1]))[1:] {
			if !slices.Contains(words[:], w) {
				t.Errorf("page %d: word %q not in vocabulary", i, w)
			}
		}
		hrefs := extractHrefs(t, body)
		if len(hrefs) != 12 {
			t.Errorf("page %d: %d links, want 12", i, len(hrefs))
		}
		// Duplicate hrefs, fragments and odd forms are all present.
		dup := false
		for j, h := range hrefs {
			if slices.Contains(hrefs[j+1:], h) {
				dup = true
			}
		}
		joined := strings.Join(hrefs, " ")
		for _, want := range []string{"#top", "#bottom", "HTTP://" + strings.TrimPrefix(s.URL(), "http://") + "/"} {
			if !strings.Contains(joined, want) {
				t.Errorf("page %d: no href containing %q in %q", i, want, joined)
			}
		}
		if !dup {
			t.Errorf("page %d: no duplicate href in %q", i, joined)
		}
		if i > 0 && !strings.Contains(joined, "../") {
			t.Errorf("page %d: no ../ href in %q", i, joined)
		}
	}
	// All words in the vocabulary are distinct and not "uniqword…".
	seen := map[string]bool{}
	for _, w := range words {
		if seen[w] || strings.HasPrefix(w, "uniqword") || w != strings.ToLower(w) {
			t.Errorf("bad vocabulary word %q", w)
		}
		seen[w] = true
	}
}

func TestTraps(t *testing.T) {
	t.Parallel()
	s := New(Options{Pages: 5, Traps: true})
	defer s.Close()
	c := noRedirectClient()

	resp, body := get(t, c, s.URL()+PathMissing)
	if resp.StatusCode != http.StatusNotFound || !bytes.Contains(body, []byte("<html")) ||
		resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("%s: status %d type %q body %q", PathMissing, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	resp, _ = get(t, c, s.URL()+PathRedirect)
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != PathRedirectTarget {
		t.Errorf("%s: status %d Location %q", PathRedirect, resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body = get(t, c, s.URL()+PathRedirectTarget)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(UniqWordRedirectTarget)) || resp.Header.Get("Etag") == "" {
		t.Errorf("%s: status %d etag %q", PathRedirectTarget, resp.StatusCode, resp.Header.Get("Etag"))
	}

	resp, body = get(t, c, s.URL()+PathPDF)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pdf" ||
		!bytes.HasPrefix(body, []byte("%PDF-")) || !bytes.Contains(body, []byte(PathPDFBait)) {
		t.Errorf("%s: status %d type %q body %q", PathPDF, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	_, body = get(t, c, s.SeedURL())
	hrefs := extractHrefs(t, body)
	for _, want := range []string{PathMissing, PathBroken, PathRedirect, PathPDF, "javascript:alert(1)", "mailto:webmaster@example.com", "data:text/plain;base64,aGVsbG8="} {
		if !slices.Contains(hrefs, want) {
			t.Errorf("home page has no href %q", want)
		}
	}

	// Unknown paths (including /p/0 and out-of-range pages) are 404s and are counted.
	for _, p := range []string{"/p/0", "/p/5", "/p/x", "/nope"} {
		if resp, _ := get(t, c, s.URL()+p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", p, resp.StatusCode)
		}
	}
	if h := s.Hits(); h["/p/0"] != 1 || h["/nope"] != 1 {
		t.Errorf("unknown paths not counted: %v", h)
	}
}

func TestNoTrapsNoExternal(t *testing.T) {
	t.Parallel()
	// Without Traps, ExternalURL is ignored and no trap route exists.
	s := New(Options{Pages: 5, ExternalURL: "http://example.invalid"})
	defer s.Close()
	c := noRedirectClient()
	_, body := get(t, c, s.SeedURL())
	if bytes.Contains(body, []byte("example.invalid")) || bytes.Contains(body, []byte(PathMissing)) {
		t.Errorf("home page without Traps contains trap links:\n%s", body)
	}
	if resp, _ := get(t, c, s.URL()+PathRedirect); resp.StatusCode != http.StatusNotFound {
		t.Errorf("%s without Traps: status %d, want 404", PathRedirect, resp.StatusCode)
	}
}

func TestBroken(t *testing.T) {
	t.Parallel()
	s := New(Options{Pages: 2, Traps: true})
	defer s.Close()
	c := noRedirectClient()
	check := func() {
		t.Helper()
		var got []int
		for range 4 {
			resp, body := get(t, c, s.URL()+PathBroken)
			got = append(got, resp.StatusCode)
			if resp.StatusCode == http.StatusOK && !bytes.Contains(body, []byte(UniqWordBroken)) {
				t.Errorf("recovered /broken body lacks %q", UniqWordBroken)
			}
		}
		if diff := cmp.Diff([]int{500, 500, 200, 200}, got); diff != "" {
			t.Errorf("/broken statuses (-want +got):\n%s", diff)
		}
	}
	check()
	if got := s.Hits()[PathBroken]; got != 4 {
		t.Errorf("Hits[/broken] = %d, want 4", got)
	}
	s.Reset()
	if got := s.TotalHits(); got != 0 {
		t.Errorf("TotalHits after Reset = %d", got)
	}
	check()
}

func TestHitCounting(t *testing.T) {
	t.Parallel()
	s := New(Options{Pages: 10, RobotsTxt: "User-agent: *\nDisallow: /p/3\n"})
	defer s.Close()
	c := noRedirectClient()

	resp, body := get(t, c, s.URL()+PathRobots)
	if string(body) != "User-agent: *\nDisallow: /p/3\n" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("robots.txt: type %q body %q", resp.Header.Get("Content-Type"), body)
	}
	get(t, c, s.URL()+"/p/3", "User-Agent", "trawl-test/1.0")
	get(t, c, s.URL()+"/p/3")
	get(t, c, s.URL()+"/p/3?x=1")
	get(t, c, s.URL()+"/?q")
	get(t, c, s.SeedURL())
	get(t, c, s.URL()+"/p/3#frag") // fragment is never sent

	want := map[string]int{"/p/3": 3, "/p/3?x=1": 1, "/?q": 1, "/": 1}
	if diff := cmp.Diff(want, s.Hits()); diff != "" {
		t.Errorf("Hits (-want +got):\n%s", diff)
	}
	if got := s.RobotsHits(); got != 1 {
		t.Errorf("RobotsHits = %d, want 1", got)
	}
	if got := s.TotalHits(); got != 6 {
		t.Errorf("TotalHits = %d, want 6", got)
	}
	reqs := s.Requests()
	var paths []string
	for i, r := range reqs {
		paths = append(paths, r.Path)
		if i > 0 && r.At.Before(reqs[i-1].At) {
			t.Errorf("request %d arrived before request %d", i, i-1)
		}
	}
	if diff := cmp.Diff([]string{PathRobots, "/p/3", "/p/3", "/p/3?x=1", "/?q", "/", "/p/3"}, paths); diff != "" {
		t.Errorf("Requests paths (-want +got):\n%s", diff)
	}
	if got := reqs[1].UserAgent; got != "trawl-test/1.0" {
		t.Errorf("UserAgent = %q", got)
	}

	// Concurrent requests are all counted.
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			resp, err := http.Get(s.PageURL(i % 10))
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if got := s.TotalHits(); got != 56 {
		t.Errorf("TotalHits after concurrent GETs = %d, want 56", got)
	}
}

func TestRobotsStatus(t *testing.T) {
	t.Parallel()
	s := New(Options{Pages: 1, RobotsStatus: http.StatusNotFound})
	defer s.Close()
	resp, _ := get(t, noRedirectClient(), s.URL()+PathRobots)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("robots status %d, want 404", resp.StatusCode)
	}
	d := New(Options{Pages: 1})
	defer d.Close()
	_, body := get(t, noRedirectClient(), d.URL()+PathRobots)
	if string(body) != DefaultRobotsTxt {
		t.Errorf("default robots.txt = %q", body)
	}
}

func TestConditionalGet(t *testing.T) {
	t.Parallel()
	s := New(Options{Pages: 3})
	defer s.Close()
	c := noRedirectClient()
	u := s.PageURL(2)
	resp, body := get(t, c, u)
	etag, lm := resp.Header.Get("Etag"), resp.Header.Get("Last-Modified")
	if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 3 {
		t.Fatalf("ETag %q is not a strong entity tag", etag)
	}
	if _, err := http.ParseTime(lm); err != nil {
		t.Fatalf("Last-Modified %q: %v", lm, err)
	}
	if resp.ContentLength != int64(len(body)) {
		t.Errorf("Content-Length %d, body %d", resp.ContentLength, len(body))
	}
	if _, b0 := get(t, c, s.PageURL(1)); bytes.Equal(b0, body) {
		t.Error("pages 1 and 2 have identical bodies")
	}
	if r1, _ := get(t, c, s.PageURL(1)); r1.Header.Get("Etag") == etag {
		t.Error("pages 1 and 2 share an ETag")
	}

	tests := []struct {
		hdr  []string
		want int
	}{
		{[]string{"If-None-Match", etag}, http.StatusNotModified},
		{[]string{"If-None-Match", `"nope", ` + etag}, http.StatusNotModified},
		{[]string{"If-None-Match", "W/" + etag}, http.StatusNotModified},
		{[]string{"If-None-Match", "*"}, http.StatusNotModified},
		{[]string{"If-None-Match", `"nope"`}, http.StatusOK},
		{[]string{"If-Modified-Since", lm}, http.StatusNotModified},
		{[]string{"If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT"}, http.StatusOK},
		{[]string{"If-None-Match", `"nope"`, "If-Modified-Since", lm}, http.StatusOK},
	}
	for _, tc := range tests {
		resp, body := get(t, c, u, tc.hdr...)
		if resp.StatusCode != tc.want {
			t.Errorf("%q: status %d, want %d", tc.hdr, resp.StatusCode, tc.want)
		}
		if resp.StatusCode == http.StatusNotModified && (len(body) != 0 || resp.Header.Get("Etag") != etag) {
			t.Errorf("%q: 304 with body %d bytes, ETag %q", tc.hdr, len(body), resp.Header.Get("Etag"))
		}
	}
	if got := s.Hits()["/p/2"]; got != 1+len(tests) {
		t.Errorf("conditional requests not counted: %d", got)
	}
}

func TestMinSpacingMath(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tests := []struct {
		name  string
		reqs  []Request
		min   time.Duration
		count int
	}{
		{"empty", nil, 0, 0},
		{"one", []Request{{Path: "/", At: at(0)}}, 0, 1},
		{"only robots", []Request{{Path: PathRobots, At: at(0)}, {Path: PathRobots, At: at(1)}}, 0, 0},
		{"two", []Request{{Path: "/", At: at(0)}, {Path: "/p/1", At: at(250)}}, 250 * time.Millisecond, 2},
		{"smallest gap wins", []Request{
			{Path: "/", At: at(0)}, {Path: "/p/1", At: at(300)}, {Path: "/p/2", At: at(400)}, {Path: "/p/3", At: at(1000)},
		}, 100 * time.Millisecond, 4},
		{"robots ignored", []Request{
			{Path: "/", At: at(0)}, {Path: PathRobots, At: at(10)}, {Path: "/p/1", At: at(200)}, {Path: "/p/2", At: at(500)},
		}, 200 * time.Millisecond, 3},
		{"simultaneous", []Request{{Path: "/", At: at(5)}, {Path: "/p/1", At: at(5)}, {Path: "/p/2", At: at(900)}}, 0, 3},
	}
	for _, tc := range tests {
		d, n := minSpacing(tc.reqs)
		if d != tc.min || n != tc.count {
			t.Errorf("%s: minSpacing = %v, %d; want %v, %d", tc.name, d, n, tc.min, tc.count)
		}
	}
}

func TestMinSpacingLive(t *testing.T) {
	t.Parallel()
	s := New(Options{Pages: 5, Delay: 20 * time.Millisecond})
	defer s.Close()
	c := noRedirectClient()
	get(t, c, s.URL()+PathRobots)
	const gap = 30 * time.Millisecond
	for i := range 4 {
		start := time.Now()
		get(t, c, s.PageURL(i))
		if el := time.Since(start); el < s.Options().Delay {
			t.Errorf("request took %v, want >= Delay %v", el, s.Options().Delay)
		}
		time.Sleep(gap)
	}
	d, n := s.MinSpacing()
	if n != 4 {
		t.Errorf("MinSpacing considered %d requests, want 4", n)
	}
	if d < gap+s.Options().Delay {
		t.Errorf("MinSpacing = %v, want >= %v", d, gap+s.Options().Delay)
	}
}

func TestCounter(t *testing.T) {
	t.Parallel()
	c := NewCounter()
	defer c.Close()
	for _, p := range []string{"/ext/1", "/ext/2?a=b"} {
		resp, body := get(t, noRedirectClient(), c.URL()+p)
		if resp.StatusCode != http.StatusOK || string(body) != "external" {
			t.Errorf("%s: %d %q", p, resp.StatusCode, body)
		}
	}
	if got := c.Hits(); got != 2 {
		t.Errorf("Hits = %d, want 2", got)
	}
	if diff := cmp.Diff([]string{"/ext/1", "/ext/2?a=b"}, c.Paths()); diff != "" {
		t.Errorf("Paths (-want +got):\n%s", diff)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	s := New(Options{})
	defer s.Close()
	want := Options{Pages: 500, LinksPerPage: 10, TextBytes: 2048, Seed: 1, RobotsTxt: DefaultRobotsTxt, RobotsStatus: 200}
	if diff := cmp.Diff(want, s.Options()); diff != "" {
		t.Errorf("Options (-want +got):\n%s", diff)
	}
	if got := len(s.ExpectedURLs()); got != 500 {
		t.Errorf("len(ExpectedURLs) = %d, want 500", got)
	}
}

func TestBuildLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 160 MB site")
	}
	t.Parallel()
	start := time.Now()
	s := New(Options{Pages: 20000, TextBytes: 8192})
	defer s.Close()
	t.Logf("built 20000 x 8 KB pages in %v", time.Since(start))
	if got := len(s.ExpectedURLs()); got != 20000 {
		t.Errorf("len(ExpectedURLs) = %d", got)
	}
}

// benchParallelism × GOMAXPROCS requests are kept in flight, so the
// benchmarks measure throughput rather than loopback round-trip latency.
const benchParallelism = 8

var (
	benchOnce sync.Once
	benchSite *Site
)

// BenchmarkServe measures parallel GET throughput against a 20,000-page,
// 8 KB site (built once, outside the timer).
func BenchmarkServe(b *testing.B) {
	benchOnce.Do(func() { benchSite = New(Options{Pages: 20000, TextBytes: 8192}) })
	s := benchSite
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	urls := make([]string, 20000)
	for i := range urls {
		urls[i] = s.PageURL(i)
	}
	var worker atomic.Int64
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(worker.Add(1)) * 7919
		for pb.Next() {
			i++
			resp, err := c.Get(urls[i%len(urls)])
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	b.StopTimer()
	s.Reset() // keep the request log from growing across runs
}

// BenchmarkServeRaw is BenchmarkServe with a minimal keep-alive HTTP/1.1
// client on raw TCP connections, so that most CPU goes to the server under
// test rather than to net/http's client.
func BenchmarkServeRaw(b *testing.B) {
	benchOnce.Do(func() { benchSite = New(Options{Pages: 20000, TextBytes: 8192}) })
	s := benchSite
	addr := strings.TrimPrefix(s.URL(), "http://")
	var worker atomic.Int64
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		br := bufio.NewReaderSize(conn, 16<<10)
		var req []byte
		i := int(worker.Add(1)) * 7919
		for pb.Next() {
			i++
			req = append(req[:0], "GET "...)
			req = append(req, PagePath(i%20000)...)
			req = append(req, " HTTP/1.1\r\nHost: "...)
			req = append(req, addr...)
			req = append(req, "\r\nUser-Agent: bench\r\n\r\n"...)
			if _, err := conn.Write(req); err != nil {
				b.Error(err)
				return
			}
			n := -1
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					b.Error(err)
					return
				}
				if len(line) <= 2 {
					break
				}
				if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
					n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
				}
			}
			if n < 0 {
				b.Error("no Content-Length")
				return
			}
			if _, err := br.Discard(n); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	b.StopTimer()
	s.Reset()
}

// BenchmarkNew measures building a 20,000-page, 8 KB site.
func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		s := New(Options{Pages: 20000, TextBytes: 8192})
		s.Close()
	}
}
