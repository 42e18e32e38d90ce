package testsite

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Bench is the site the benchmarks crawl, one of docs/PERFORMANCE.md's scenarios: N pages, K
// links per page and S bytes of text per page, all fixed by a seed, every page reachable from
// the first, and a robots.txt that allows everything (DefaultRobotsTxt). Unlike a Site it keeps
// no record of requests, and its bodies are assembled at start-up from a shared text pool, so
// that serving a page costs one map-free index lookup and three writes and 20,000 pages of
// 8 KiB take 256 KiB of text: the server is never the bottleneck. Pages are at PagePath, like a
// Site's. It is safe for concurrent use and never changes.
//
// The pages are byte for byte those of the former test/bench/site, so benchmark figures stay
// comparable (docs/adr/0053-one-synthetic-site.md; TestBenchPagesUnchanged).
type Bench struct {
	opts  Scenario
	heads [][]byte // per page: HTML head, title and links
	offs  []int    // per page: offset of its text in pool
	pool  []byte
	tail  []byte
	lens  []string // Content-Length per page
	links [][]int  // per page: the pages it links to
}

// Scenario sizes a Bench. Zero fields take the defaults of the performance goal.
type Scenario struct {
	Pages     int    // N, default 20,000
	Links     int    // K links per page, default 10
	TextBytes int    // S bytes of visible text per page, default 8,192
	Seed      uint64 // default 1
}

func (o Scenario) withDefaults() Scenario {
	if o.Pages <= 0 {
		o.Pages = 20000
	}
	if o.Links <= 0 {
		o.Links = 10
	}
	if o.TextBytes <= 0 {
		o.TextBytes = 8192
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	return o
}

// benchWords are the words of a Bench's text pool.
var benchWords = strings.Fields(`alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima
mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu crawl
frontier queue broker page link text index scope robots fetch parse store commit batch lease`)

// NewBench builds the site for the scenario.
func NewBench(sc Scenario) *Bench {
	o := sc.withDefaults()
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	s := &Bench{opts: o, heads: make([][]byte, o.Pages), offs: make([]int, o.Pages),
		lens: make([]string, o.Pages), links: make([][]int, o.Pages), tail: []byte("</p></body></html>\n")}
	// A text pool of 256 KiB (or four page texts, if larger); page texts are windows into it.
	poolLen := max(256<<10, 4*o.TextBytes)
	pool := make([]byte, 0, poolLen+16)
	for len(pool) < poolLen {
		pool = append(pool, benchWords[rng.IntN(len(benchWords))]...)
		pool = append(pool, ' ')
	}
	s.pool = pool[:poolLen]
	for i := range o.Pages {
		// Link 0 goes to the next page, so every page is reachable from the first; the others
		// are random (duplicates and self links included, as on real sites).
		ls := make([]int, o.Links)
		ls[0] = (i + 1) % o.Pages
		for k := 1; k < o.Links; k++ {
			ls[k] = rng.IntN(o.Pages)
		}
		s.links[i] = ls
		var b strings.Builder
		fmt.Fprintf(&b, "<!doctype html><html><head><meta charset=\"utf-8\"><title>Page %d</title></head><body><h1>Page %d</h1><ul>", i, i)
		for _, l := range ls {
			fmt.Fprintf(&b, "<li><a href=\"%s\">page %d</a></li>", PagePath(l), l)
		}
		b.WriteString("</ul><p>")
		s.heads[i] = []byte(b.String())
		s.offs[i] = rng.IntN(len(s.pool) - o.TextBytes + 1)
		s.lens[i] = strconv.Itoa(len(s.heads[i]) + o.TextBytes + len(s.tail))
	}
	return s
}

// Scenario returns the scenario in force (defaults filled in).
func (s *Bench) Scenario() Scenario { return s.opts }

// Links returns the pages that page n links to.
func (s *Bench) Links(n int) []int { return s.links[n] }

// Text returns the visible body text of page n.
func (s *Bench) Text(n int) string {
	return string(s.pool[s.offs[n] : s.offs[n]+s.opts.TextBytes])
}

// page returns the page number of path, or -1.
func (s *Bench) page(path string) int {
	if path == "/" {
		return 0
	}
	rest, ok := strings.CutPrefix(path, "/p/")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n <= 0 || n >= s.opts.Pages || strconv.Itoa(n) != rest {
		return -1
	}
	return n
}

var benchRobots = []byte(DefaultRobotsTxt)

// ServeHTTP serves pages, robots.txt, and 404 for anything else.
func (s *Bench) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if r.URL.Path == "/robots.txt" {
		h["Content-Type"] = []string{"text/plain"}
		h["Content-Length"] = []string{strconv.Itoa(len(benchRobots))}
		_, _ = w.Write(benchRobots)
		return
	}
	n := s.page(r.URL.Path)
	if n < 0 {
		http.NotFound(w, r)
		return
	}
	h["Content-Type"] = []string{"text/html; charset=utf-8"}
	h["Content-Length"] = []string{s.lens[n]}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(s.heads[n])
	_, _ = w.Write(s.pool[s.offs[n] : s.offs[n]+s.opts.TextBytes])
	_, _ = w.Write(s.tail)
}

// BenchServer is a running Bench on a listener of its own (test/bench/cmd/site serves one).
type BenchServer struct {
	*Bench
	URL  string // base URL, without a trailing slash
	srv  *http.Server
	done chan struct{}
}

// ListenBench serves a new Bench on addr ("127.0.0.1:0" for a free port).
func ListenBench(addr string, sc Scenario) (*BenchServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("testsite: listen: %w", err)
	}
	s := &BenchServer{Bench: NewBench(sc), URL: "http://" + ln.Addr().String(), done: make(chan struct{})}
	s.srv = &http.Server{Handler: s.Bench, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln) // returns ErrServerClosed on Close
	}()
	return s, nil
}

// Close stops the server and waits for it.
func (s *BenchServer) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}
