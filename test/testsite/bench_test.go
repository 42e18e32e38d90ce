package testsite

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func serveBench(t testing.TB, h http.Handler, path string) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if cl := rec.Header().Get("Content-Length"); rec.Code == 200 && cl != "" && cl != strconv.Itoa(rec.Body.Len()) {
		t.Errorf("%s: Content-Length %s, body %d bytes", path, cl, rec.Body.Len())
	}
	return rec.Code, rec.Body.String()
}

var benchHrefRE = regexp.MustCompile(`href="([^"]+)"`)

// TestBenchReachableAndDeterministic crawls the site through its handler: every page is reachable
// from the first, each has K links and about S bytes, and the same seed gives the same bytes.
func TestBenchReachableAndDeterministic(t *testing.T) {
	t.Parallel()
	opts := Scenario{Pages: 500, Links: 7, TextBytes: 2000, Seed: 42}
	s, again, other := NewBench(opts), NewBench(opts), NewBench(Scenario{Pages: 500, Links: 7, TextBytes: 2000, Seed: 43})
	seen := map[string]bool{"/": true}
	queue := []string{"/"}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		code, body := serveBench(t, s, p)
		if code != 200 {
			t.Fatalf("GET %s = %d", p, code)
		}
		if _, b2 := serveBench(t, again, p); b2 != body {
			t.Fatalf("GET %s differs between two sites with the same seed", p)
		}
		links := benchHrefRE.FindAllStringSubmatch(body, -1)
		if len(links) != opts.Links {
			t.Fatalf("GET %s: %d links, want %d", p, len(links), opts.Links)
		}
		if n := len(body); n < opts.TextBytes || n > opts.TextBytes+1000 {
			t.Fatalf("GET %s: %d bytes, want about %d", p, n, opts.TextBytes)
		}
		for _, m := range links {
			if !seen[m[1]] {
				seen[m[1]] = true
				queue = append(queue, m[1])
			}
		}
	}
	if len(seen) != opts.Pages {
		t.Errorf("reached %d pages from the first, want %d", len(seen), opts.Pages)
	}
	_, a := serveBench(t, s, "/p/17")
	_, b := serveBench(t, other, "/p/17")
	if a == b {
		t.Error("another seed gives the same page")
	}
}

// TestBenchPagesUnchanged: a Bench serves, byte for byte and header for header, the pages the
// benchmark site served before it moved here from test/bench/site (the digests were taken from
// that code), so benchmark figures from before and after compare (docs/PERFORMANCE.md).
func TestBenchPagesUnchanged(t *testing.T) {
	t.Parallel()
	for sc, want := range map[Scenario]string{
		{Pages: 2000, Links: 10, TextBytes: 8192, Seed: 1}: "b979ae7911791545a30fe8d59bcfb93c9d389cf885656e8efeb71661d451baec",
		{Pages: 300, Links: 7, TextBytes: 1000, Seed: 42}:  "c99efc35bc98e07771f949964615b62ccce981fd6c135dde3c7ae4a4436d4996",
	} {
		s := NewBench(sc)
		h := sha256.New()
		paths := []string{"/robots.txt", "/nope"}
		for i := range sc.Pages {
			paths = append(paths, PagePath(i))
		}
		for _, p := range paths {
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
			fmt.Fprintf(h, "%d %v %s|", rec.Code, rec.Header(), rec.Body.Bytes())
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			t.Errorf("%+v: the pages' digest is %s, want %s: the benchmark site changed", sc, got, want)
		}
	}
}

func TestBenchRobotsAndNotFound(t *testing.T) {
	t.Parallel()
	s := NewBench(Scenario{Pages: 10})
	if code, body := serveBench(t, s, "/robots.txt"); code != 200 || !strings.Contains(body, "Allow: /") || strings.Contains(body, "Disallow") {
		t.Errorf("robots.txt = %d %q", code, body)
	}
	for _, p := range []string{"/p/10", "/p/0", "/p/01", "/p/x", "/other", "/p/-1"} {
		if code, _ := serveBench(t, s, p); code != 404 {
			t.Errorf("GET %s = %d, want 404", p, code)
		}
	}
}

func TestListenBench(t *testing.T) {
	t.Parallel()
	srv, err := ListenBench("127.0.0.1:0", Scenario{Pages: 3, TextBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/p/2")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `href="/"`) {
		t.Errorf("GET /p/2 = %d %q", resp.StatusCode, body)
	}
	if got, want := srv.Text(2), string(body); !strings.Contains(want, got) {
		t.Errorf("Text(2) is not in the page")
	}
}

// BenchmarkBenchHandler is the handler's own cost per page (no network).
func BenchmarkBenchHandler(b *testing.B) {
	s := NewBench(Scenario{})
	req := httptest.NewRequest(http.MethodGet, "/p/12345", nil)
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	b.SetBytes(int64(len(s.heads[12345]) + s.opts.TextBytes + len(s.tail)))
	for b.Loop() {
		clear(w.h)
		s.ServeHTTP(w, req)
	}
}

// BenchmarkBenchHTTP fetches pages over loopback keep-alive connections from 32 goroutines: the
// pages/s it reports (with the client's cost included) is the site's floor under the crawls.
func BenchmarkBenchHTTP(b *testing.B) {
	srv, err := ListenBench("127.0.0.1:0", Scenario{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			resp, err := client.Get(srv.URL + PagePath(i%srv.opts.Pages))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			i += 7
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pages/s")
}

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}
