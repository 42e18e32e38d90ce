package crawl

import (
	"bytes"
	"slices"
	"testing"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
)

// TestPackGroupsPagesOnly checks how a burst becomes messages: pages' results in order, at most
// ResultsPerMessage and message.ResultsMessageBytes a message; robots and sitemap results, and
// a result too big to share, each alone.
func TestPackGroupsPagesOnly(t *testing.T) {
	t.Parallel()
	kinds := []string{message.KindPage, message.KindPage, message.KindRobots, message.KindPage, message.KindPage,
		message.KindPage, message.KindSitemap, message.KindPage, message.KindPage, message.KindPage}
	jobs := make([]message.CrawlJob, len(kinds))
	for i, k := range kinds {
		jobs[i] = message.CrawlJob{Kind: k}
	}
	b := newBundle(pipeline.Delivery{}, jobs)
	const mb = message.ResultsMessageBytes
	sizes := map[int]int{4: mb * 45 / 100, 5: mb * 45 / 100, 7: mb / 5, 8: mb/2 + 1}
	var burst []outgoing
	for i := range jobs {
		burst = append(burst, outgoing{msg: message.Encoded{Body: bytes.Repeat([]byte{'x'}, max(sizes[i], 1))}, job: task{b: b, i: i}})
	}
	w := &Worker{ResultsPerMessage: 3}
	var got [][]int
	for _, g := range w.pack(burst) {
		var ids []int
		for _, o := range g {
			ids = append(ids, o.job.i)
		}
		got = append(got, ids)
	}
	// Robots 2 goes alone at once while pages gather; 0, 1, 3 fill a message of three; sitemap
	// 6 alone; 4 and 5 (0.9 of the byte limit) cannot take 7 (0.2); 8 is too big to share; 7
	// and 9 end the burst.
	want := [][]int{{2}, {0, 1, 3}, {6}, {4, 5}, {8}, {7, 9}}
	if !slices.EqualFunc(got, want, slices.Equal[[]int]) {
		t.Fatalf("groups %v, want %v", got, want)
	}
	w.ResultsPerMessage = 1
	if n := len(w.pack(burst)); n != len(burst) {
		t.Errorf("one result a message: %d groups for %d results", n, len(burst))
	}
}
