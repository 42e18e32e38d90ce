package crawl

import (
	"bytes"
	"net/http"
	"runtime"
	"testing"

	"github.com/trawlhq/trawl/test/testsite"
)

func TestGunzip(t *testing.T) {
	t.Parallel()
	sitemap := []byte(`<?xml version="1.0"?><urlset><url><loc>http://example.com/</loc></url></urlset>`)
	got, cut, err := Gunzip(testsite.Gzip(sitemap), 1<<20)
	if err != nil || cut || !bytes.Equal(got, sitemap) {
		t.Errorf("Gunzip(sitemap) = %q, %t, %v", got, cut, err)
	}
	got, cut, err = Gunzip(append(testsite.Gzip([]byte("one ")), testsite.Gzip([]byte("two"))...), 100)
	if err != nil || cut || string(got) != "one two" {
		t.Errorf("Gunzip(two members) = %q, %t, %v", got, cut, err)
	}
	got, cut, err = Gunzip(testsite.Gzip(sitemap), 10)
	if err != nil || !cut || !bytes.Equal(got, sitemap[:10]) {
		t.Errorf("Gunzip(sitemap, 10) = %q, %t, %v", got, cut, err)
	}
	if _, _, err := Gunzip([]byte("<urlset>not gzip</urlset>"), 100); err == nil {
		t.Error("Gunzip(plain text) succeeded")
	}
	z := testsite.Gzip(bytes.Repeat(sitemap, 100))
	if _, _, err := Gunzip(z[:len(z)/2], 1<<20); err == nil {
		t.Error("Gunzip(truncated stream) succeeded")
	}
}

// TestGunzipBomb decompresses the hostile .xml.gz bomb (256 MiB expanded, as the fetcher keeps
// it) with a 1 MiB limit: the output is cut, and memory stays near the limit.
func TestGunzipBomb(t *testing.T) {
	h := testsite.NewHostile()
	defer h.Close()
	f := testFetcher(t, FetchConfig{})
	resp, err := f.tr.RoundTrip(mustRequest(t, h.URL()+testsite.HostileSitemapBomb))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	out, cut, err := Gunzip(body.Bytes(), 1<<20)
	runtime.ReadMemStats(&after)
	if err != nil || !cut || len(out) != 1<<20 {
		t.Fatalf("Gunzip(bomb) = %d bytes, cut %t, %v", len(out), cut, err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	if alloc > 16<<20 {
		t.Errorf("Gunzip(bomb) allocated %d MiB for 1 MiB of output", alloc>>20)
	}
	t.Logf("Gunzip of the %d KiB bomb (%d MiB expanded) with a 1 MiB limit allocated %.1f MiB", body.Len()>>10, testsite.HostileBombBytes>>20, float64(alloc)/(1<<20))
}

func mustRequest(t *testing.T, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
