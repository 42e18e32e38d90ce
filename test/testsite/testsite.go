// Package testsite serves deterministic synthetic web sites for crawl tests and benchmarks.
//
// A Site is an httptest.Server serving a fixed, pre-rendered link graph of
// HTML pages ("/" and "/p/1" … "/p/{Pages-1}"), optionally with "trap" URLs
// (404, flaky 500, redirect, PDF, non-HTTP hrefs, external links). Every
// request is recorded so tests can assert that each in-scope URL was fetched
// exactly once, that no external host was contacted and that per-host
// request spacing was respected.
//
// A Bench is the site the benchmarks crawl (docs/PERFORMANCE.md, "The scenarios"): N pages of K
// links and S bytes of text from a shared pool, with no request log, so that serving it costs
// next to nothing; test/bench/cmd/site serves one in a process of its own.
//
// Nothing here touches the network beyond loopback listeners.
package testsite

import (
	"hash/crc32"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Paths of the trap resources served when Options.Traps is set. They are
// all linked from "/" (PathRedirectTarget only through the redirect).
const (
	// PathMissing answers 404 with a small HTML body (no links).
	PathMissing = "/missing"
	// PathBroken answers 500 for the first BrokenFailures requests, then 200
	// with a normal HTML page.
	PathBroken = "/broken"
	// PathRedirect answers 301 with Location: PathRedirectTarget.
	PathRedirect = "/redirect"
	// PathRedirectTarget is a normal page reachable only through PathRedirect.
	PathRedirectTarget = "/target-of-redirect"
	// PathPDF answers 200 with Content-Type application/pdf and a small
	// binary body. The body contains the text of an HTML link to PathPDFBait.
	PathPDF = "/file.pdf"
	// PathPDFBait is mentioned only inside the PDF body. A crawler that
	// parses non-HTML responses as HTML will request it; a correct one never
	// does (it is not in ExpectedURLs, and answers 404).
	PathPDFBait = "/linked-from-pdf"
	// PathRobots is the robots.txt path; requests to it are counted apart
	// (see RobotsHits).
	PathRobots = "/robots.txt"
	// PathNoFollow is a normal page whose robots meta tag says
	// NoFollowMeta. It links to "/" and to PathNoFollowBait.
	PathNoFollow = "/nofollow"
	// PathNoFollowBait is linked only from PathNoFollow. A crawler that
	// honours the page's nofollow never requests it (it is not in
	// ExpectedURLs, and answers 404).
	PathNoFollowBait = "/linked-from-nofollow"
	// PathQuery is the path of the query pages: QueryPages differ from
	// each other only by their query, and "/" also links to the first in
	// QueryOrderVariant, its query parameters in another order, which a
	// crawler must treat as the same page (it answers 404, and is not in
	// ExpectedURLs). PathQuery alone answers 404 too.
	PathQuery = "/q"
	// QueryOrderVariant is QueryPages[0] with its parameters swapped.
	QueryOrderVariant = PathQuery + "?b=2&a=1"
)

// QueryPages are the pages that differ only by query (paths with query,
// parameters sorted by name), all linked from "/" with Traps.
var QueryPages = []string{PathQuery + "?a=1&b=2", PathQuery + "?page=1", PathQuery + "?page=2"}

// NoFollowMeta is the robots meta tag of PathNoFollow.
const NoFollowMeta = `<meta name="robots" content="noindex, nofollow">`

// BrokenFailures is the number of 500 answers PathBroken gives before it
// starts answering 200.
const BrokenFailures = 2

// DefaultRobotsTxt is the robots.txt body served when Options.RobotsTxt is empty.
const DefaultRobotsTxt = "User-agent: *\nAllow: /\n"

// Options configures a Site. Zero values select the documented defaults.
type Options struct {
	Pages        int    // number of normal pages; default 500
	LinksPerPage int    // <a href> elements in each page's link list; default 10
	TextBytes    int    // approx bytes of visible text per page; default 2048
	Seed         int64  // fixes the link graph and text; default 1 (0 means 1)
	Traps        bool   // add the "tricky" pages (see the Path* constants)
	ExternalURL  string // if set (with Traps), some pages link to ExternalURL+"/ext/1" and "/ext/2"
	RobotsTxt    string // body of /robots.txt; default DefaultRobotsTxt
	// RobotsStatus is the status code /robots.txt answers with; default 200.
	// With a status other than 200 the body is a short plain-text message.
	RobotsStatus int
	// Delay is an optional per-request latency (for politeness tests),
	// applied to every request after its arrival has been recorded.
	Delay time.Duration
	// Addr is the loopback address to listen on, such as "127.0.0.2:0"
	// (for tests of the SSRF guard's allowlist); default "127.0.0.1:0".
	Addr string
}

func (o Options) withDefaults() Options {
	if o.Pages <= 0 {
		o.Pages = 500
	}
	if o.LinksPerPage <= 0 {
		o.LinksPerPage = 10
	}
	if o.TextBytes <= 0 {
		o.TextBytes = 2048
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.RobotsTxt == "" {
		o.RobotsTxt = DefaultRobotsTxt
	}
	if o.RobotsStatus == 0 {
		o.RobotsStatus = http.StatusOK
	}
	o.ExternalURL = strings.TrimRight(o.ExternalURL, "/")
	return o
}

// Request is one recorded request.
type Request struct {
	Path      string    // escaped path plus "?query" if the request had one
	At        time.Time // when the request reached the machine (Arrival)
	UserAgent string
}

type routeKind uint8

const (
	kindStatic   routeKind = iota // fixed status, headers and body; conditional GET if etag set
	kindBroken                    // 500 BrokenFailures times, then like kindStatic
	kindRedirect                  // 301, fixed headers and body
	kindRobots                    // robots.txt
)

type header struct {
	key string // canonical MIME header key
	val []string
}

type route struct {
	id      int
	path    string
	kind    routeKind
	status  int
	body    []byte
	hdr     []header // written with direct map assignment (shared, read-only slices)
	etag    string   // quoted strong ETag, "" if none
	etagHdr []string
	lmHdr   []string
	lastMod time.Time
}

// Site is a running synthetic web site. It is safe for concurrent use.
type Site struct {
	opts     Options
	srv      *httptest.Server
	base     string // canonical base URL, no trailing slash
	host     string // host:port
	routes   map[string]*route
	expected []string

	broken atomic.Int64

	mu      sync.Mutex
	counts  []int          // by route id
	other   map[string]int // unknown paths and requests with a query
	log     []Request
	robotID int
}

// New builds the site described by opts and starts serving it on a loopback
// httptest server. All bodies are rendered before New returns.
func New(opts Options) *Site {
	opts = opts.withDefaults()
	s := &Site{opts: opts, other: make(map[string]int)}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	if opts.Addr != "" {
		l, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			panic("testsite: listen on " + opts.Addr + ": " + err.Error())
		}
		s.srv.Listener.Close()
		s.srv.Listener = l
	}
	StampArrivals(s.srv) // Request.At is when the request reached the machine
	s.host = s.srv.Listener.Addr().String()
	s.base = "http://" + s.host
	s.build()
	s.srv.Start() // s.srv.URL == s.base: httptest uses "http://" + listener address
	return s
}

// URL returns the base URL, e.g. http://127.0.0.1:PORT (no trailing slash).
func (s *Site) URL() string { return s.base }

// Close shuts the server down, waiting for in-flight requests.
func (s *Site) Close() { s.srv.Close() }

// Client returns an HTTP client configured for the site's server.
func (s *Site) Client() *http.Client { return s.srv.Client() }

// Options returns the options in effect (defaults filled in).
func (s *Site) Options() Options { return s.opts }

// SeedURL returns the URL of the first page: URL()+"/".
func (s *Site) SeedURL() string { return s.base + "/" }

// PagePath returns the path of normal page n ("/" for 0, "/p/n" otherwise).
func PagePath(n int) string {
	if n == 0 {
		return "/"
	}
	return "/p/" + strconv.Itoa(n)
}

// PageURL returns the canonical URL of normal page n.
func (s *Site) PageURL(n int) string { return s.base + PagePath(n) }

// UniqWord returns the word that occurs only in normal page n ("uniqword{n}").
func UniqWord(n int) string { return "uniqword" + strconv.Itoa(n) }

// Special pages carry these unique words instead of uniqword{N}.
const (
	UniqWordBroken         = "uniqwordbroken"
	UniqWordRedirectTarget = "uniqwordredirecttarget"
)

// ExpectedURLs returns the sorted canonical URLs a correct same-host crawl of
// unlimited depth must store exactly once: every normal page plus, with
// Traps, PathMissing, PathBroken, PathRedirect, PathRedirectTarget, PathPDF,
// PathNoFollow and QueryPages. External, javascript:, mailto: and data: links, PathPDFBait and
// /robots.txt are not included. Options.RobotsTxt rules are not applied.
func (s *Site) ExpectedURLs() []string { return slices.Clone(s.expected) }

// Hits returns how many times each path (with query, e.g. "/p/12" or
// "/p/3?x=1") was requested, excluding /robots.txt (see RobotsHits). Paths
// never requested are absent.
func (s *Site) Hits() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int, len(s.other)+64)
	for _, rt := range s.routes {
		if c := s.counts[rt.id]; c > 0 && rt.id != s.robotID {
			m[rt.path] = c
		}
	}
	for k, c := range s.other {
		m[k] += c
	}
	return m
}

// RobotsHits returns how many times /robots.txt (without query) was requested.
func (s *Site) RobotsHits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[s.robotID]
}

// TotalHits returns the number of requests recorded, excluding /robots.txt
// (the sum of Hits).
func (s *Site) TotalHits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.log) - s.counts[s.robotID]
}

// Requests returns every request (including /robots.txt) in arrival order.
func (s *Site) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// MinSpacing returns the smallest interval between the arrival of two
// consecutive requests (excluding /robots.txt), and the number of requests
// considered. With fewer than two requests the interval is 0.
func (s *Site) MinSpacing() (time.Duration, int) {
	return minSpacing(s.Requests())
}

func minSpacing(reqs []Request) (time.Duration, int) {
	var (
		prev time.Time
		min  time.Duration
		n    int
	)
	for _, r := range reqs {
		if r.Path == PathRobots {
			continue
		}
		if n > 0 {
			if d := r.At.Sub(prev); n == 1 || d < min {
				min = d
			}
		}
		prev = r.At
		n++
	}
	return min, n
}

// Reset forgets all recorded requests and re-arms PathBroken.
func (s *Site) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.counts)
	clear(s.other)
	s.log = nil
	s.broken.Store(0)
}

func (s *Site) record(rt *route, key, ua string, at time.Time) {
	s.mu.Lock()
	s.log = append(s.log, Request{Path: key, At: at, UserAgent: ua})
	if rt != nil && len(key) == len(rt.path) {
		s.counts[rt.id]++
	} else {
		s.other[key]++
	}
	s.mu.Unlock()
}

var notFoundBody = []byte("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>404 Not Found</title>\n</head>\n<body>\n<h1>404 Not Found</h1>\n<p>There is nothing here.</p>\n</body>\n</html>\n")

var serverErrorBody = []byte("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>500 Internal Server Error</title>\n</head>\n<body>\n<h1>500 Internal Server Error</h1>\n<p>Try again later.</p>\n</body>\n</html>\n")

var (
	htmlType = []string{"text/html; charset=utf-8"}
	textType = []string{"text/plain; charset=utf-8"}
	pdfType  = []string{"application/pdf"}
)

func (s *Site) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	key := path
	if r.URL.RawQuery != "" || r.URL.ForceQuery {
		key = path + "?" + r.URL.RawQuery
	}
	rt := s.routes[key] // a query page
	if rt == nil {
		rt = s.routes[path]
	}
	s.record(rt, key, r.Header.Get("User-Agent"), Arrival(r))

	if d := s.opts.Delay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}

	h := w.Header()
	if rt == nil {
		h["Content-Type"] = htmlType
		h["Content-Length"] = notFoundLen
		w.WriteHeader(http.StatusNotFound)
		w.Write(notFoundBody)
		return
	}
	if rt.kind == kindBroken && s.broken.Add(1) <= BrokenFailures {
		h["Content-Type"] = htmlType
		h["Content-Length"] = serverErrorLen
		w.WriteHeader(http.StatusInternalServerError)
		w.Write(serverErrorBody)
		return
	}
	if rt.etag != "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && notModified(r, rt) {
		h["Etag"] = rt.etagHdr
		h["Last-Modified"] = rt.lmHdr
		w.WriteHeader(http.StatusNotModified)
		return
	}
	for _, kv := range rt.hdr {
		h[kv.key] = kv.val
	}
	w.WriteHeader(rt.status)
	w.Write(rt.body)
}

var (
	notFoundLen    = []string{strconv.Itoa(len(notFoundBody))}
	serverErrorLen = []string{strconv.Itoa(len(serverErrorBody))}
)

// notModified implements If-None-Match (weak comparison, "*" and lists) and,
// when If-None-Match is absent, If-Modified-Since.
func notModified(r *http.Request, rt *route) bool {
	if inm, ok := r.Header["If-None-Match"]; ok {
		for _, v := range inm {
			for tag := range strings.SplitSeq(v, ",") {
				tag = strings.TrimSpace(tag)
				if tag == "*" || strings.TrimPrefix(tag, "W/") == rt.etag {
					return true
				}
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		t, err := http.ParseTime(ims)
		return err == nil && !rt.lastMod.After(t)
	}
	return false
}

// baseModTime is the Last-Modified time of page 0; page n is n minutes later.
var baseModTime = time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)

func (s *Site) build() {
	o := s.opts
	s.routes = make(map[string]*route, o.Pages+8)
	bodies := make([][]byte, o.Pages)

	// Render pages in parallel: every page has its own RNG stream, so the
	// result does not depend on scheduling.
	workers := min(runtime.GOMAXPROCS(0), max(1, o.Pages/256))
	var wg sync.WaitGroup
	var next atomic.Int64
	const chunk = 64
	for range workers {
		wg.Go(func() {
			for {
				lo := int(next.Add(chunk)) - chunk
				if lo >= o.Pages {
					return
				}
				for i := lo; i < min(lo+chunk, o.Pages); i++ {
					bodies[i] = s.renderPage(i)
				}
			}
		})
	}
	wg.Wait()

	for i, b := range bodies {
		s.addPage(PagePath(i), b, baseModTime.Add(time.Duration(i)*time.Minute))
	}
	if o.Traps {
		s.addTraps()
	}
	robots := s.add(&route{path: PathRobots, kind: kindRobots, status: o.RobotsStatus})
	if o.RobotsStatus == http.StatusOK {
		robots.body = []byte(o.RobotsTxt)
	} else {
		robots.body = []byte(strconv.Itoa(o.RobotsStatus) + " " + http.StatusText(o.RobotsStatus) + "\n")
	}
	robots.hdr = []header{{"Content-Type", textType}, {"Content-Length", []string{strconv.Itoa(len(robots.body))}}}
	s.robotID = robots.id
	s.counts = make([]int, len(s.routes))

	s.expected = make([]string, 0, len(s.routes))
	for p, rt := range s.routes {
		if rt.kind != kindRobots {
			s.expected = append(s.expected, s.base+p)
		}
	}
	slices.Sort(s.expected)
}

func (s *Site) add(rt *route) *route {
	rt.id = len(s.routes)
	s.routes[rt.path] = rt
	return rt
}

// addPage registers a 200 text/html page with ETag and Last-Modified.
func (s *Site) addPage(path string, body []byte, mod time.Time) *route {
	rt := s.add(&route{path: path, kind: kindStatic, status: http.StatusOK, body: body})
	rt.setValidators(mod)
	rt.hdr = []header{
		{"Content-Type", htmlType},
		{"Content-Length", []string{strconv.Itoa(len(body))}},
		{"Etag", rt.etagHdr},
		{"Last-Modified", rt.lmHdr},
	}
	return rt
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func (rt *route) setValidators(mod time.Time) {
	sum := crc32.Checksum(rt.body, crcTable)
	rt.etag = `"` + strconv.FormatUint(uint64(sum), 16) + "-" + strconv.FormatInt(int64(len(rt.body)), 16) + `"`
	rt.etagHdr = []string{rt.etag}
	rt.lastMod = mod
	rt.lmHdr = []string{mod.Format(http.TimeFormat)}
}

func (s *Site) addTraps() {
	s.add(&route{
		path: PathMissing, kind: kindStatic, status: http.StatusNotFound, body: notFoundBody,
		hdr: []header{{"Content-Type", htmlType}, {"Content-Length", notFoundLen}},
	})

	rng := pageRand(s.opts.Seed, -1)
	broken := s.renderSpecial(rng, "Broken page (recovered)", UniqWordBroken)
	s.addPage(PathBroken, broken, baseModTime).kind = kindBroken

	redirBody := []byte("<!DOCTYPE html>\n<html><head><title>Moved</title></head><body><a href=\"" + PathRedirectTarget + "\">Moved Permanently</a></body></html>\n")
	s.add(&route{
		path: PathRedirect, kind: kindRedirect, status: http.StatusMovedPermanently, body: redirBody,
		hdr: []header{
			{"Location", []string{PathRedirectTarget}},
			{"Content-Type", htmlType},
			{"Content-Length", []string{strconv.Itoa(len(redirBody))}},
		},
	})

	target := s.renderSpecial(rng, "Target of redirect", UniqWordRedirectTarget)
	s.addPage(PathRedirectTarget, target, baseModTime)

	nofollow := []byte("<!DOCTYPE html>\n<html><head><title>Nofollow</title>" + NoFollowMeta + "</head><body>" +
		"<p>This page asks robots not to follow its links.</p><a href=\"/\">Home</a> <a href=\"" + PathNoFollowBait + "\">bait</a></body></html>\n")
	s.addPage(PathNoFollow, nofollow, baseModTime)

	for i, q := range QueryPages {
		page := s.renderSpecial(rng, "Query page "+strconv.Itoa(i), "uniqwordquery"+strconv.Itoa(i))
		s.addPage(q, page, baseModTime)
	}

	pdf := s.add(&route{path: PathPDF, kind: kindStatic, status: http.StatusOK, body: pdfBody})
	pdf.setValidators(baseModTime)
	pdf.hdr = []header{
		{"Content-Type", pdfType},
		{"Content-Length", []string{strconv.Itoa(len(pdfBody))}},
		{"Etag", pdf.etagHdr},
		{"Last-Modified", pdf.lmHdr},
	}
}

// pdfBody is a tiny (not necessarily valid) PDF with binary bytes and text
// that looks like an HTML link, to catch crawlers that parse non-HTML.
var pdfBody = []byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" +
	"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n" +
	"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n" +
	"% <html><body><a href=\"" + PathPDFBait + "\">bait</a></body></html>\n" +
	"stream\n\x00\x01\x02\x03\xff\xfe\xfd\x80\x81\x90\xa0\nendstream\n" +
	"trailer\n<< /Root 1 0 R >>\n%%EOF\n")

// ---- rendering ----

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// pageRand returns the RNG stream for page n (n < 0 for special pages).
func pageRand(seed int64, n int) *rand.Rand {
	a := splitmix64(uint64(seed))
	b := splitmix64(a ^ uint64(int64(n)) ^ 0x5851f42d4c957f2d)
	return rand.New(rand.NewPCG(a, b))
}

// hrefForm is a way of writing a link to a page.
type hrefForm int

const (
	formPath       hrefForm = iota // "/p/5"
	formRel                        // "5", "./6" from /p/x; "p/5" from /
	formDotDot                     // "../p/5"
	formAbsUpper                   // "HTTP://127.0.0.1:PORT/p/5"
	formFragTop                    // "/p/5#top"
	formFragBottom                 // "/p/5#bottom"
	numForms
)

// appendHref appends an href from normal page from to normal page to.
func (s *Site) appendHref(b []byte, from, to int, form hrefForm) []byte {
	switch form {
	case formRel:
		switch {
		case from == 0 && to == 0:
			return append(b, "./"...)
		case from == 0:
			return strconv.AppendInt(append(b, "p/"...), int64(to), 10)
		case to == 0:
			return append(b, "../"...)
		case to%2 == 0:
			return strconv.AppendInt(append(b, "./"...), int64(to), 10)
		default:
			return strconv.AppendInt(b, int64(to), 10)
		}
	case formDotDot:
		if to == 0 {
			return append(b, "../"...)
		}
		return strconv.AppendInt(append(b, "../p/"...), int64(to), 10)
	case formAbsUpper:
		b = append(b, "HTTP://"...)
		b = append(b, s.host...)
	}
	if to == 0 {
		b = append(b, '/')
	} else {
		b = strconv.AppendInt(append(b, "/p/"...), int64(to), 10)
	}
	switch form {
	case formFragTop:
		b = append(b, "#top"...)
	case formFragBottom:
		b = append(b, "#bottom"...)
	}
	return b
}

func appendHead(b []byte, title string) []byte {
	b = append(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>"...)
	b = append(b, title...)
	b = append(b, "</title>\n</head>\n<body>\n<h1 id=\"top\">"...)
	b = append(b, title...)
	return append(b, "</h1>\n"...)
}

// appendText appends a paragraph starting with uniq followed by about n
// bytes of seeded pseudo-random words.
func appendText(b []byte, rng *rand.Rand, uniq string, n int) []byte {
	b = append(b, "<p>"...)
	start := len(b)
	b = append(b, uniq...)
	nw := uint64(len(words))
	for len(b)-start < n {
		x := rng.Uint64()
		for k := 0; k < 8 && len(b)-start < n; k++ {
			b = append(b, ' ')
			b = append(b, words[(x&0xff)*nw>>8]...)
			x >>= 8
		}
	}
	return append(b, "</p>\n"...)
}

func (s *Site) renderPage(i int) []byte {
	o := s.opts
	rng := pageRand(o.Seed, i)
	b := make([]byte, 0, 512+o.TextBytes+o.LinksPerPage*64+1024)
	title := "Page " + strconv.Itoa(i)
	b = appendHead(b, title)
	b = appendText(b, rng, UniqWord(i), o.TextBytes)

	P := o.Pages
	next := (i + 1) % P
	chord := (i*7 + 3) % P
	b = append(b, "<ul id=\"links\">\n"...)
	for k := range o.LinksPerPage {
		var to int
		var form hrefForm
		switch k {
		case 0: // chain: guarantees every page is reachable from "/"
			to, form = next, formPath
		case 1:
			to, form = chord, formRel
		case 2: // back to the home page
			to, form = 0, [...]hrefForm{formDotDot, formPath, formFragTop}[i%3]
		case 3: // exact duplicate of slot 0
			to, form = next, formPath
		case 4:
			to, form = chord, formFragTop
		case 5:
			to, form = chord, formFragBottom
		case 6:
			to, form = rng.IntN(P), formAbsUpper
		case 7: // an earlier page
			if i > 1 {
				to = 1 + rng.IntN(i-1)
			} else {
				to = rng.IntN(P)
			}
			form = formDotDot
		default:
			to, form = rng.IntN(P), hrefForm(rng.IntN(int(numForms)))
		}
		b = append(b, "<li><a href=\""...)
		b = s.appendHref(b, i, to, form)
		b = append(b, "\">Page "...)
		b = strconv.AppendInt(b, int64(to), 10)
		b = append(b, "</a></li>\n"...)
	}
	b = append(b, "</ul>\n"...)

	if o.Traps {
		if i == 0 {
			b = append(b, trapLinks...)
		}
		if o.ExternalURL != "" && (i == 0 || i == 1 || i == P/2 || i == P-1) {
			b = append(b, "<p class=\"external\"><a href=\""...)
			b = append(b, o.ExternalURL...)
			b = append(b, "/ext/1\">External 1</a> <a href=\""...)
			b = append(b, o.ExternalURL...)
			b = append(b, "/ext/2\">External 2</a></p>\n"...)
		}
	}
	b = append(b, "<p id=\"bottom\">End of "...)
	b = append(b, title...)
	return append(b, "</p>\n</body>\n</html>\n"...)
}

// trapLinks is the trap section of "/" (with Traps).
const trapLinks = `<ul id="traps">
<li><a href="` + PathMissing + `">Missing</a></li>
<li><a href="` + PathBroken + `">Broken</a></li>
<li><a href="` + PathRedirect + `">Redirect</a></li>
<li><a href="` + PathPDF + `">PDF file</a></li>
<li><a href="` + PathNoFollow + `">Nofollow page</a></li>
<li><a href="` + PathQuery + `?b=2&amp;a=1">Query page, parameters out of order</a></li>
<li><a href="` + PathQuery + `?a=1&amp;b=2">Query page</a></li>
<li><a href="` + PathQuery + `?page=1">Query page 1</a></li>
<li><a href="` + PathQuery + `?page=2">Query page 2</a></li>
<li><a href="javascript:alert(1)">Script</a></li>
<li><a href="mailto:webmaster@example.com">Mail</a></li>
<li><a href="data:text/plain;base64,aGVsbG8=">Data</a></li>
<li><a href="#bottom">Fragment only</a></li>
<li><a href="">Empty href</a></li>
<li><a name="nohref">No href</a></li>
</ul>
`

// renderSpecial renders a trap page that is a normal 200 HTML page linking
// back to "/".
func (s *Site) renderSpecial(rng *rand.Rand, title, uniq string) []byte {
	b := make([]byte, 0, 512+s.opts.TextBytes)
	b = appendHead(b, title)
	b = appendText(b, rng, uniq, s.opts.TextBytes)
	b = append(b, "<ul id=\"links\">\n<li><a href=\"/\">Page 0</a></li>\n</ul>\n<p id=\"bottom\">End of "...)
	b = append(b, title...)
	return append(b, "</p>\n</body>\n</html>\n"...)
}

// ---- external counter ----

// Counter is a tiny server standing in for an external host that must never
// be fetched: it answers 200 "external" to anything and counts hits.
type Counter struct {
	srv   *httptest.Server
	hits  atomic.Int64
	mu    sync.Mutex
	paths []string
}

// NewCounter starts a Counter.
func NewCounter() *Counter {
	c := &Counter{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.hits.Add(1)
		c.mu.Lock()
		c.paths = append(c.paths, r.URL.RequestURI())
		c.mu.Unlock()
		w.Header()["Content-Type"] = textType
		w.Write([]byte("external"))
	}))
	return c
}

// URL returns the counter's base URL (no trailing slash).
func (c *Counter) URL() string { return c.srv.URL }

// Hits returns the number of requests received.
func (c *Counter) Hits() int { return int(c.hits.Load()) }

// Paths returns the request URIs received, in arrival order.
func (c *Counter) Paths() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.paths)
}

// Close shuts the counter down.
func (c *Counter) Close() { c.srv.Close() }
