package message

import (
	"strings"
	"testing"
	"time"
)

// benchFetchResult is a FetchResult as the crawler publishes it for a page of the synthetic
// bench site: 8 KB of text and 10 links.
func benchFetchResult() FetchResult {
	links := make([]string, 10)
	for i := range links {
		links[i] = "http://127.0.0.1:8000/p/" + strings.Repeat("7", i+1)
	}
	return FetchResult{Envelope: NewEnvelope(TypeFetchResult), Kind: KindPage, URLID: 12345, TargetID: 7,
		URL: "http://127.0.0.1:8000/p/12345", Depth: 4, Dispatch: 1, Worker: "crawler-1",
		FinalURL: "http://127.0.0.1:8000/p/12345", Status: 200, ContentType: "text/html; charset=utf-8",
		Title: "Page 12345", Text: strings.Repeat("alpha bravo charlie delta echo foxtrot golf hotel \"quoted\" <tag> ", 8192/64),
		Links: links, ContentHash: strings.Repeat("ab", 32), Size: 8800, StartedAt: time.Now(), DurationMS: 3}
}

// BenchmarkEncodeFetchResult is the crawler's per-page encode cost: the frame it publishes,
// and plain JSON for comparison.
func BenchmarkEncodeFetchResult(b *testing.B) {
	for _, enc := range []struct {
		name string
		fn   func(FetchResult) ([]byte, error)
	}{{"frame", EncodeFetchResult}, {"json", func(fr FetchResult) ([]byte, error) { return Encode(fr) }}} {
		b.Run(enc.name, func(b *testing.B) {
			fr := benchFetchResult()
			b.ReportAllocs()
			var body []byte
			for b.Loop() {
				var err error
				if body, err = enc.fn(fr); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(body)), "msg-bytes")
		})
	}
}

// BenchmarkDecodeFetchResult is the processor's per-page decode cost, of a frame and of plain
// JSON.
func BenchmarkDecodeFetchResult(b *testing.B) {
	framed, err := EncodeFetchResult(benchFetchResult())
	if err != nil {
		b.Fatal(err)
	}
	plain, _ := Encode(benchFetchResult())
	for _, c := range []struct {
		name string
		body []byte
	}{{"frame", framed}, {"json", plain}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var fr FetchResult
				if err := Decode(c.body, TypeFetchResult, &fr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeCrawlJob is the scheduler's per-job encode cost.
func BenchmarkEncodeCrawlJob(b *testing.B) {
	job := CrawlJob{Envelope: NewEnvelope(TypeCrawlJob), Kind: KindPage, URLID: 12345, TargetID: 7,
		URL: "http://127.0.0.1:8000/p/12345", Depth: 4, Dispatch: 1}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(job); err != nil {
			b.Fatal(err)
		}
	}
}
