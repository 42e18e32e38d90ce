package crawl

import (
	"testing"

	"github.com/trawlhq/trawl/test/testsite"
)

// BenchmarkFetch fetches and extracts pages of the synthetic site (8 KB of text, 10 links
// each) from 16 goroutines. Read the CPU cost per page from -cpuprofile or `time`, not from
// ns/op alone: the benchmark includes the test server's work on the same cores.
func BenchmarkFetch(b *testing.B) {
	site := testsite.New(testsite.Options{Pages: 1000, TextBytes: 8192, LinksPerPage: 10})
	defer site.Close()
	f := NewFetcher(b.Context(), FetchConfig{UserAgent: testUA, MaxBodyBytes: 10 << 20, Concurrency: 16, Guard: Guard{AllowPrivate: true}})
	defer f.Close()
	urls := site.ExpectedURLs()
	b.SetParallelism(8) // 8 × GOMAXPROCS goroutines
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			res := f.Fetch(testJob(urls[i%len(urls)]), "bench")
			if res.Status != 200 || len(res.Links) == 0 {
				b.Errorf("status %d, %d links, error %q", res.Status, len(res.Links), res.Error)
				return
			}
			i++
		}
	})
}
