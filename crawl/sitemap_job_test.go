package crawl

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/sitemap"
	"github.com/trawlhq/trawl/test/testsite"
)

func sitemapJob(u string) message.CrawlJob {
	return message.CrawlJob{Envelope: message.NewEnvelope(message.TypeCrawlJob), Kind: message.KindSitemap, URLID: 7, TargetID: 3, URL: u}
}

func TestFetchSitemapJob(t *testing.T) {
	t.Parallel()
	urlset := `<urlset><url><loc>http://a.test/1</loc></url><url><loc>http://a.test/2</loc></url></urlset>`
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(urlset))
	_ = zw.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/s.xml":
			_, _ = w.Write([]byte(urlset))
		case "/s.xml.gz":
			w.Header().Set("Content-Type", "application/x-gzip")
			_, _ = w.Write(gz.Bytes())
		case "/index.xml":
			fmt.Fprint(w, `<sitemapindex><sitemap><loc>http://a.test/s.xml.gz</loc></sitemap></sitemapindex>`)
		case "/moved.xml":
			http.Redirect(w, r, "/s.xml", http.StatusMovedPermanently)
		case "/page.html":
			fmt.Fprint(w, "<html><body>not a sitemap</body></html>")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	f := testFetcher(t, FetchConfig{})
	want := []string{"http://a.test/1", "http://a.test/2"}
	for _, p := range []string{"/s.xml", "/s.xml.gz", "/moved.xml"} {
		res := f.FetchSitemapJob(t.Context(), sitemapJob(srv.URL+p), "w")
		if res.Status != 200 || res.Error != "" || res.Kind != message.KindSitemap || res.URLID != 7 || res.TargetID != 3 {
			t.Errorf("%s: status %d error %q kind %q ids %d/%d", p, res.Status, res.Error, res.Kind, res.URLID, res.TargetID)
		}
		if diff := cmp.Diff(want, res.Links); diff != "" {
			t.Errorf("%s: links (-want +got):\n%s", p, diff)
		}
	}
	res := f.FetchSitemapJob(t.Context(), sitemapJob(srv.URL+"/index.xml"), "w")
	if diff := cmp.Diff([]string{"http://a.test/s.xml.gz"}, res.Sitemaps); diff != "" || len(res.Links) != 0 {
		t.Errorf("index: sitemaps (-want +got):\n%s links %v", diff, res.Links)
	}
	if res := f.FetchSitemapJob(t.Context(), sitemapJob(srv.URL+"/page.html"), "w"); res.Error == "" || !res.Permanent {
		t.Errorf("HTML page: error %q permanent %t, want a permanent error", res.Error, res.Permanent)
	}
	if res := f.FetchSitemapJob(t.Context(), sitemapJob(srv.URL+"/missing.xml"), "w"); res.Status != 404 || res.Error != "" {
		t.Errorf("missing: status %d error %q, want a plain 404", res.Status, res.Error)
	}
}

// TestSitemapGzipBombMemory: the hostile server's .xml.gz bomb (256 MiB expanded) is streamed
// into the parser within sitemap.MaxBytes: bounded work, and memory far below the bound.
func TestSitemapGzipBombMemory(t *testing.T) {
	h := hostileSite(t)
	f := testFetcher(t, FetchConfig{MaxBodyBytes: 4 << 20})
	f.Fetch(testJob(h.URL()+"/warm-up"), "w")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res := f.FetchSitemapJob(t.Context(), sitemapJob(h.URL()+testsite.HostileSitemapBomb), "w")
	runtime.ReadMemStats(&after)
	if res.Status != 200 || !res.Permanent || !strings.Contains(res.Error, "not a sitemap") {
		t.Errorf("bomb: status %d permanent %t error %q, want a permanent 'not a sitemap'", res.Status, res.Permanent, res.Error)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	if alloc > 32<<20 {
		t.Errorf("fetching the sitemap bomb allocated %d MiB; want far below sitemap.MaxBytes (%d MiB)", alloc>>20, sitemap.MaxBytes>>20)
	}
	t.Logf("sitemap bomb (%d MiB expanded): allocated %.1f MiB", testsite.HostileBombBytes>>20, float64(alloc)/(1<<20))
}
