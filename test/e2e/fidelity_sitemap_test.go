package e2e

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/test/testsite"
)

// sitemapSite serves pages reachable only through sitemaps: robots.txt names a sitemap index
// (and a sitemap on another host, which must be ignored); the index lists a .xml.gz sitemap, a
// plain one and a gzip bomb; /sitemap.xml is missing.
type sitemapSite struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits map[string]int
	bomb []byte
	s1gz []byte
}

func newSitemapSite(t *testing.T) *sitemapSite {
	t.Helper()
	s := &sitemapSite{hits: map[string]int{}}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	base := s.srv.URL
	var urls strings.Builder
	urls.WriteString(`<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
		xmlns:image="http://www.google.com/schemas/sitemap-image/1.1" xmlns:video="http://www.google.com/schemas/sitemap-video/1.1">`)
	for i := 1; i <= 5; i++ {
		// Images and videos of a page are not pages.
		fmt.Fprintf(&urls, "<url><loc>%[1]s/orphan/%[2]d</loc><image:image><image:loc>%[1]s/images/%[2]d.jpg</image:loc></image:image>"+
			"<video:video><video:content_loc>%[1]s/images/%[2]d.mp4</video:content_loc><video:player_loc>%[1]s/images/player?v=%[2]d</video:player_loc></video:video></url>",
			base, i)
	}
	urls.WriteString(`<url><loc>http://external.invalid/x</loc></url></urlset>`)
	s.s1gz = testsite.Gzip([]byte(urls.String()))
	// 64 MiB of XML that never closes, well past sitemap.MaxBytes, in about 64 KiB of gzip.
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	_, _ = zw.Write([]byte("<urlset><url><loc>"))
	chunk := bytes.Repeat([]byte{'a'}, 1<<20)
	for range 64 {
		_, _ = zw.Write(chunk)
	}
	_ = zw.Close()
	s.bomb = bomb.Bytes()
	return s
}

func (s *sitemapSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.hits[r.URL.RequestURI()]++
	s.mu.Unlock()
	base := "http://" + r.Host
	page := func(title, body string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!DOCTYPE html><html><head><title>%s</title></head><body>%s</body></html>", title, body)
	}
	switch p := r.URL.Path; {
	case p == "/robots.txt":
		fmt.Fprintf(w, "User-agent: *\nAllow: /\nSitemap: %s/sitemap-index.xml\nSitemap: http://other.invalid/sitemap.xml\n", base)
	case p == "/sitemap-index.xml":
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprintf(w, `<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>%[1]s/s1.xml.gz</loc></sitemap><sitemap><loc>%[1]s/bomb.xml.gz</loc></sitemap>
<sitemap><loc>%[1]s/s2.xml</loc></sitemap><sitemap><loc>http://other.invalid/s3.xml</loc></sitemap></sitemapindex>`, base)
	case p == "/s1.xml.gz":
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(s.s1gz)
	case p == "/bomb.xml.gz":
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(s.bomb)
	case p == "/s2.xml":
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprintf(w, `<urlset xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"><url><loc>%[1]s/orphan/6</loc><image:image><image:loc>%[1]s/images/6.jpg</image:loc></image:image></url><url><loc>%[1]s/excluded/1</loc></url><url><loc>%[1]s/orphan/1</loc></url></urlset>`, base)
	case p == "/":
		page("home", `<a href="/linked">linked</a>`)
	case p == "/linked" || strings.HasPrefix(p, "/orphan/") || strings.HasPrefix(p, "/excluded/") || strings.HasPrefix(p, "/images/"):
		page(p, "text")
	default:
		http.NotFound(w, r)
	}
}

func (s *sitemapSite) snapshot() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.hits {
		out[k] = v
	}
	return out
}

// TestSitemapsFeedTheFrontier: sitemaps from robots.txt, a sitemap index, a .xml.gz child and
// a plain child add the pages nothing links to, within the target's scope and exclude
// pattern, and not their image and video extensions' URLs; the gzip bomb is cut at the bound and fails; other hosts' sitemaps are ignored; the
// target is done only after its sitemaps. A second target with sitemaps off on the same kind
// of site stores only the linked pages.
func TestSitemapsFeedTheFrontier(t *testing.T) {
	t.Parallel()
	site := newSitemapSite(t)
	off := newSitemapSite(t)
	sys := NewSystem(t)
	sys.StartAll(2, 1)
	id := createTarget(t, sys, map[string]any{"seed_url": site.srv.URL + "/", "per_host_rps": 0, "exclude": "/excluded/"})
	offID := createTarget(t, sys, map[string]any{"seed_url": off.srv.URL + "/", "per_host_rps": 0, "sitemaps": false})
	sys.WaitDone(id, 2*time.Minute)
	sys.WaitDone(offID, 2*time.Minute)

	stored := query[string](t, sys.DSN, `SELECT url FROM pages WHERE target_id = $1 ORDER BY url`, id)
	want := []string{site.srv.URL + "/", site.srv.URL + "/linked"}
	for i := 1; i <= 6; i++ {
		want = append(want, fmt.Sprintf("%s/orphan/%d", site.srv.URL, i))
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, stored); diff != "" {
		t.Errorf("stored pages (-want +got):\n%s", diff)
	}
	states := query[string](t, sys.DSN, `SELECT substr(url, length($2) + 1) || ' ' || state FROM sitemaps WHERE target_id = $1 ORDER BY url`,
		id, site.srv.URL)
	wantStates := []string{"/bomb.xml.gz failed", "/s1.xml.gz done", "/s2.xml done", "/sitemap-index.xml done", "/sitemap.xml failed"}
	if diff := cmp.Diff(wantStates, states); diff != "" {
		t.Errorf("sitemaps (-want +got):\n%s", diff)
	}
	for uri, n := range site.snapshot() {
		if n != 1 {
			t.Errorf("%s requested %d times, want once", uri, n)
		}
		if strings.HasPrefix(uri, "/excluded/") {
			t.Errorf("%s is excluded but was fetched", uri)
		}
		if strings.HasPrefix(uri, "/images/") {
			t.Errorf("%s is an image or video of a sitemap entry but was fetched as a page", uri)
		}
	}
	offStored := query[string](t, sys.DSN, `SELECT url FROM pages WHERE target_id = $1 ORDER BY url`, offID)
	if diff := cmp.Diff([]string{off.srv.URL + "/", off.srv.URL + "/linked"}, offStored); diff != "" {
		t.Errorf("sitemaps off: stored pages (-want +got):\n%s", diff)
	}
	for uri := range off.snapshot() {
		if strings.Contains(uri, "sitemap") || strings.HasSuffix(uri, ".xml") || strings.HasSuffix(uri, ".gz") {
			t.Errorf("sitemaps off, but %s was requested", uri)
		}
	}
	n := query[int64](t, sys.DSN, `SELECT count(*) FROM sitemaps WHERE target_id = $1`, offID)
	if n[0] != 0 {
		t.Errorf("sitemaps off: %d sitemaps queued", n[0])
	}
}
