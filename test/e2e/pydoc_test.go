package e2e

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/trawlhq/trawl/crawlurl"
)

// PydocRoot is where Debian's python3.11-doc package installs the HTML documentation.
const PydocRoot = "/usr/share/doc/python3.11/html"

// TestCrawlPythonDocs crawls a real documentation site, Debian's python3.11-doc (about 530
// HTML pages), served from its files by http.FileServer, with two crawlers and two processors,
// from index.html. The test walks the same files itself, modelling how http.FileServer answers
// each URL (files, 404s, its redirects for /index.html and directories, directory listings),
// following same-site <a>/<area> links from index.html, and compares: every reachable URL is
// stored, nothing else is, and the server saw each exactly once.
func TestCrawlPythonDocs(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(filepath.Join(PydocRoot, "index.html")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3.11-doc is not installed (%v); .ci/run installs it", err)
		}
		t.Skipf("python3.11-doc is not installed (apt-get install python3.11-doc): %v", err)
	}
	counter := &hitCounter{hits: map[string]int{}, next: http.FileServer(http.Dir(PydocRoot))}
	srv := httptest.NewServer(counter)
	defer srv.Close()
	seed, err := crawlurl.Canonicalize(srv.URL + "/index.html")
	if err != nil {
		t.Fatal(err)
	}
	sys := NewSystem(t)
	sys.StartAll(2, 2)
	start := time.Now()
	id := createTarget(t, sys, map[string]any{"seed_url": seed, "max_depth": 1000, "max_pages": 100000, "per_host_rps": 0})
	// The walk runs while the system crawls (it parses 67 MB of HTML, slow under -race).
	walkStart := time.Now()
	want := walkFileServer(t, PydocRoot, seed)
	t.Logf("independent walk: %d URLs reachable from %s in %s", len(want), seed, time.Since(walkStart).Round(time.Millisecond))
	st := sys.WaitDone(id, 5*time.Minute)
	elapsed := time.Since(start)

	stored := query[string](t, sys.DSN, `SELECT url FROM pages WHERE target_id = $1 ORDER BY url`, id)
	wantURLs := make([]string, 0, len(want))
	for u := range want {
		wantURLs = append(wantURLs, u)
	}
	slices.Sort(wantURLs)
	if diff := cmp.Diff(wantURLs, stored); diff != "" {
		t.Errorf("stored URLs (-walk +crawl):\n%s", diff)
	}
	if st.Failed != 0 || st.Pending != 0 || st.Discovered != int64(len(want)) {
		t.Errorf("target status %+v, want %d discovered, none failed or pending", st, len(want))
	}
	// Each URL's status matches the model.
	statuses := map[string]int{}
	for _, row := range query[[]any](t, sys.DSN, `SELECT ARRAY[url::text, status::text] FROM pages WHERE target_id = $1`, id) {
		var code int
		for _, c := range row[1].(string) {
			code = code*10 + int(c-'0')
		}
		statuses[row[0].(string)] = code
	}
	var html200, other200, redirects, notFound int
	for u, n := range want {
		if statuses[u] != n.status {
			t.Errorf("status of %s = %d, want %d", u, statuses[u], n.status)
		}
		switch {
		case n.status == 200 && n.html:
			html200++
		case n.status == 200:
			other200++
		case n.status == 301:
			redirects++
		default:
			notFound++
		}
	}
	// Every reachable URL was requested exactly once, and nothing else but robots.txt and
	// /sitemap.xml (both 404 here).
	hits := counter.snapshot()
	for uri, n := range hits {
		if n != 1 {
			t.Errorf("%s requested %d times, want once", uri, n)
		}
		if c, err := crawlurl.Canonicalize(srv.URL + uri); err != nil || want[c].status == 0 && uri != "/robots.txt" && uri != "/sitemap.xml" {
			t.Errorf("%s requested, but it is not reachable from the seed", uri)
		}
	}
	if got, wantHits := len(hits), len(want)+2; got != wantHits {
		t.Errorf("%d distinct requests, want %d (every reachable URL, robots.txt and sitemap.xml)", got, wantHits)
	}
	t.Logf("python3.11-doc: %d URLs expected, %d stored (%d HTML pages, %d other files, %d redirects, %d not found) in %s: %.0f pages/s (race=%t)",
		len(want), len(stored), html200, other200, redirects, notFound, elapsed.Round(time.Millisecond),
		float64(len(stored))/elapsed.Seconds(), raceEnabled)
}

type hitCounter struct {
	mu   sync.Mutex
	hits map[string]int
	next http.Handler
}

func (h *hitCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.hits[r.URL.RequestURI()]++
	h.mu.Unlock()
	h.next.ServeHTTP(w, r)
}

func (h *hitCounter) snapshot() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]int, len(h.hits))
	for k, v := range h.hits {
		out[k] = v
	}
	return out
}

// modelNode is what the walk expects for one canonical URL.
type modelNode struct {
	status int
	html   bool
}

// walkFileServer returns every canonical URL reachable from seed on a http.FileServer of root,
// with the answer it gets, by reading the files.
func walkFileServer(t *testing.T, root, seed string) map[string]modelNode {
	t.Helper()
	seedURL, _ := url.Parse(seed)
	out := map[string]modelNode{}
	queue := []string{seed}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if _, seen := out[cur]; seen {
			continue
		}
		u, err := url.Parse(cur)
		if err != nil {
			t.Fatalf("walk: %v", err)
		}
		status, body, location := fileServerAnswer(root, u)
		isHTML := status == 200 && body != nil
		out[cur] = modelNode{status: status, html: isHTML}
		var links []string
		switch {
		case status == http.StatusMovedPermanently:
			links = []string{location}
		case isHTML:
			links = hrefs(body)
		}
		for _, l := range links {
			ref, err := url.Parse(strings.TrimSpace(l))
			if err != nil {
				continue
			}
			abs := u.ResolveReference(ref)
			if abs.Scheme != "http" && abs.Scheme != "https" {
				continue
			}
			c, err := crawlurl.Canonicalize(abs.String())
			if err != nil {
				continue
			}
			cu, err := url.Parse(c)
			if err != nil || cu.Host != seedURL.Host {
				continue
			}
			if _, seen := out[c]; !seen {
				queue = append(queue, c)
			}
		}
	}
	return out
}

// fileServerAnswer models http.FileServer: the status of a request for u, the body if it is
// HTML (an .html file or a directory listing), and the Location of a redirect.
func fileServerAnswer(root string, u *url.URL) (status int, htmlBody []byte, location string) {
	upath := u.Path
	if !strings.HasPrefix(upath, "/") {
		upath = "/" + upath
	}
	redirect := func(loc string) (int, []byte, string) {
		if u.RawQuery != "" {
			loc += "?" + u.RawQuery
		}
		return http.StatusMovedPermanently, nil, loc
	}
	if strings.HasSuffix(upath, "/index.html") {
		return redirect("./")
	}
	name := filepath.Join(root, filepath.FromSlash(path.Clean(upath)))
	fi, err := os.Stat(name)
	if err != nil {
		return http.StatusNotFound, nil, ""
	}
	if fi.IsDir() {
		if !strings.HasSuffix(upath, "/") {
			return redirect(path.Base(upath) + "/")
		}
		if b, err := os.ReadFile(filepath.Join(name, "index.html")); err == nil {
			return http.StatusOK, b, ""
		}
		entries, err := os.ReadDir(name)
		if err != nil {
			return http.StatusInternalServerError, nil, ""
		}
		var listing bytes.Buffer
		for _, e := range entries {
			n := e.Name()
			if e.IsDir() || e.Type()&os.ModeSymlink != 0 && isDir(filepath.Join(name, n)) {
				n += "/"
			}
			listing.WriteString(`<a href="` + (&url.URL{Path: n}).String() + `">x</a>`)
		}
		return http.StatusOK, listing.Bytes(), ""
	}
	if strings.HasSuffix(upath, "/") {
		return redirect("../" + path.Base(upath))
	}
	if strings.HasSuffix(name, ".html") || strings.HasSuffix(name, ".htm") {
		b, err := os.ReadFile(name)
		if err != nil {
			return http.StatusInternalServerError, nil, ""
		}
		return http.StatusOK, b, ""
	}
	return http.StatusOK, nil, ""
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// hrefs returns the href attributes of <a> and <area> elements, resolved against a <base
// href> if there is one, outside <script>, <style>, <template> and <svg> content.
func hrefs(body []byte) []string {
	z := html.NewTokenizer(bytes.NewReader(body))
	var out []string
	var base *url.URL
	skip := 0
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if base != nil {
				for i, l := range out {
					if r, err := url.Parse(l); err == nil {
						out[i] = base.ResolveReference(r).String()
					}
				}
			}
			return out
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			tok := z.Token()
			a := tok.DataAtom
			if a == atom.Template || a == atom.Svg {
				if tt == html.StartTagToken {
					skip++
				} else if tt == html.EndTagToken && skip > 0 {
					skip--
				}
				continue
			}
			if tt == html.EndTagToken || skip > 0 {
				continue
			}
			for _, at := range tok.Attr {
				if at.Key != "href" {
					continue
				}
				switch {
				case a == atom.A || a == atom.Area:
					out = append(out, at.Val)
				case a == atom.Base && base == nil:
					if b, err := url.Parse(at.Val); err == nil && (b.Scheme == "http" || b.Scheme == "https") {
						base = b
					}
				}
			}
		}
	}
}
