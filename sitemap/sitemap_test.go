package sitemap

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		want       Result
	}{
		{"urlset", `<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc> http://example.com/a </loc><lastmod>2024-01-01</lastmod></url>
  <url><loc>http://example.com/b?x=1&amp;y=2</loc></url>
  <url><priority>0.5</priority></url>
</urlset>`, Result{URLs: []string{"http://example.com/a", "http://example.com/b?x=1&y=2"}}},
		{"index", `<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>http://example.com/s1.xml.gz</loc></sitemap><sitemap><loc>http://example.com/s2.xml</loc></sitemap>
</sitemapindex>`, Result{Index: true, Sitemaps: []string{"http://example.com/s1.xml.gz", "http://example.com/s2.xml"}}},
		{"no namespace, odd case, CDATA", `<URLSET><Url><LOC><![CDATA[http://example.com/c]]></LOC></Url></URLSET>`,
			Result{URLs: []string{"http://example.com/c"}}},
		{"text", "\ufeffhttp://example.com/a\n  https://example.com/b  \nnot a url\n", Result{URLs: []string{"http://example.com/a", "https://example.com/b"}}},
		{"loc outside entries ignored", `<urlset><loc>http://x/</loc><url><loc>http://y/</loc></url></urlset>`,
			Result{URLs: []string{"http://y/"}}},
		{"image sitemap", `<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url>
    <loc>https://example.com/sample1.html</loc>
    <image:image><image:loc>https://example.com/image.jpg</image:loc></image:image>
    <image:image><image:loc>https://example.com/photo.jpg</image:loc><image:caption>c</image:caption></image:image>
  </url>
  <url><image:image><image:loc>https://example.com/only-image.jpg</image:loc></image:image><loc>https://example.com/sample2.html</loc></url>
</urlset>`, Result{URLs: []string{"https://example.com/sample1.html", "https://example.com/sample2.html"}}},
		{"image loc in a sitemap without a namespace", `<urlset xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url><loc>http://example.com/p</loc><image:image><image:loc>http://example.com/i.png</image:loc></image:image></url></urlset>`,
			Result{URLs: []string{"http://example.com/p"}}},
		{"image loc with an undeclared prefix", `<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>http://example.com/p</loc><image:image><image:loc>http://example.com/i.png</image:loc></image:image></url></urlset>`,
			Result{URLs: []string{"http://example.com/p"}}},
		{"unprefixed loc nested in an extension", `<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>http://example.com/p</loc><image:image><loc>http://example.com/i.png</loc></image:image></url></urlset>`,
			Result{URLs: []string{"http://example.com/p"}}},
		{"extension with a default namespace", `<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>http://example.com/p</loc><image xmlns="http://www.google.com/schemas/sitemap-image/1.1"><loc>http://example.com/i.png</loc></image></url></urlset>`,
			Result{URLs: []string{"http://example.com/p"}}},
		{"video sitemap", `<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:video="http://www.google.com/schemas/sitemap-video/1.1">
  <url><loc>https://example.com/videos/1.html</loc>
    <video:video>
      <video:thumbnail_loc>https://example.com/thumbs/1.jpg</video:thumbnail_loc>
      <video:title>t</video:title>
      <video:content_loc>https://cdn.example.com/1.mp4</video:content_loc>
      <video:player_loc>https://example.com/player?v=1</video:player_loc>
    </video:video>
  </url></urlset>`, Result{URLs: []string{"https://example.com/videos/1.html"}}},
		{"news sitemap", `<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
  <url><loc>https://example.com/news/1.html</loc>
    <news:news><news:publication><news:name>N</news:name><news:language>en</news:language></news:publication>
      <news:publication_date>2024-01-01</news:publication_date><news:title>T</news:title></news:news>
  </url></urlset>`, Result{URLs: []string{"https://example.com/news/1.html"}}},
		{"hreflang alternates are not queued", `<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:xhtml="http://www.w3.org/1999/xhtml">
  <url><loc>https://example.com/en/</loc>
    <xhtml:link rel="alternate" hreflang="de" href="https://example.de/de/"/>
    <xhtml:link rel="alternate" hreflang="en" href="https://example.com/en/"/>
  </url></urlset>`, Result{URLs: []string{"https://example.com/en/"}}},
		{"https namespace variant", `<urlset xmlns="https://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>http://example.com/a</loc></url></urlset>`,
			Result{URLs: []string{"http://example.com/a"}}},
		{"prefixed sitemap namespace", `<sm:urlset xmlns:sm="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <sm:url><sm:loc>http://example.com/a</sm:loc><image:image><image:loc>http://example.com/i.png</image:loc></image:image></sm:url></sm:urlset>`,
			Result{URLs: []string{"http://example.com/a"}}},
		{"index with an extension loc", `<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:x="urn:x">
  <sitemap><loc>http://example.com/s1.xml</loc><x:loc>http://example.com/not-a-sitemap</x:loc></sitemap></sitemapindex>`,
			Result{Index: true, Sitemaps: []string{"http://example.com/s1.xml"}}},
		{"old Google namespace", `<urlset xmlns="http://www.google.com/schemas/sitemap/0.84" xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url><loc>http://example.com/a</loc><image:image><image:loc>http://example.com/i.png</image:loc></image:image></url></urlset>`,
			Result{URLs: []string{"http://example.com/a"}}},
		{"entries declaring the namespace the root lacks", `<urlset><url xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><loc>http://example.com/a</loc></url>
  <url><loc xmlns="https://www.sitemaps.org/schemas/sitemap/0.9/">http://example.com/b</loc></url></urlset>`,
			Result{URLs: []string{"http://example.com/a", "http://example.com/b"}}},
		{"unclosed extension element", `<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url><loc>http://example.com/a</loc><image:image><image:loc>http://example.com/i.png</image:loc></url>
  <url><loc>http://example.com/b</loc></url></urlset>`,
			Result{URLs: []string{"http://example.com/a", "http://example.com/b"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseBad(t *testing.T) {
	t.Parallel()
	if _, err := Parse(strings.NewReader(`<html><body>no</body></html>`)); !errors.Is(err, ErrNotSitemap) {
		t.Errorf("HTML: err = %v, want ErrNotSitemap", err)
	}
	if _, err := Parse(strings.NewReader("")); err == nil {
		t.Error("empty body: no error")
	}
	// Malformed after some entries: the entries read so far are kept.
	got, err := Parse(strings.NewReader(`<urlset><url><loc>http://a/1</loc></url><url><loc>http://a/2</loc></url><url><<<`))
	if err == nil || len(got.URLs) != 2 {
		t.Errorf("truncated XML = %+v, %v; want 2 URLs and an error", got, err)
	}
}

func TestParseCapsURLs(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("<urlset>")
	for i := range MaxURLs + 10 {
		fmt.Fprintf(&b, "<url><loc>http://a/%d</loc></url>", i)
	}
	b.WriteString("</urlset>")
	got, err := Parse(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.URLs) != MaxURLs || !got.Truncated {
		t.Errorf("got %d URLs, truncated %t; want %d, true", len(got.URLs), got.Truncated, MaxURLs)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(`<urlset><url><loc>http://a/</loc></url></urlset>`)
	f.Add(`<sitemapindex><sitemap><loc>http://a/s.xml</loc></sitemap></sitemapindex>`)
	f.Add("http://a/\nhttp://b/\n")
	f.Add(`<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"><url><loc>http://a/</loc><image:image><image:loc>http://a/i.png</image:loc></image:image></url></urlset>`)
	f.Fuzz(func(t *testing.T, body string) {
		res, _ := Parse(strings.NewReader(body))
		if len(res.URLs)+len(res.Sitemaps) > MaxURLs {
			t.Fatalf("%d entries", len(res.URLs)+len(res.Sitemaps))
		}
		if res.Index && len(res.URLs) > 0 || !res.Index && len(res.Sitemaps) > 0 {
			t.Fatalf("mixed result %+v", res)
		}
	})
}

type repeatA struct{}

func (repeatA) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

// TestParseHugeTextNodeIsBounded: one <loc> of 64 MiB (what a gzip bomb of a sitemap expands
// to) stops at the run limit instead of being buffered whole by the XML decoder.
func TestParseHugeTextNodeIsBounded(t *testing.T) {
	r := io.MultiReader(strings.NewReader("<urlset><url><loc>http://a/1</loc></url><url><loc>"), io.LimitReader(repeatA{}, 64<<20))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := Parse(r)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrRunTooLong) || len(res.URLs) != 1 {
		t.Errorf("Parse = %+v, %v; want the first URL and ErrRunTooLong", res, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("allocated %d KiB, want well under 4 MiB", alloc>>10)
	}
}
