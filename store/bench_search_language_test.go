package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
	"github.com/trawlhq/trawl/test/testsite"
)

// BenchmarkIndexLanguage measures what a target's search language costs the search indexer:
// the pages of two targets, one 'simple' and one 'english', each 500 pages of the throughput
// bench's 8 KB text (testsite.Bench), are queued and indexed again by IndexPages in batches of
// 100, the two alternating. It reports the database backends' CPU and the wall time per page
// for each, and their ratio (docs/PERFORMANCE.md).
//
//	go test -run '^$' -bench IndexLanguage -benchtime 10x ./store
func BenchmarkIndexLanguage(b *testing.B) {
	s, dsn := testenv.Store(b)
	cpu := backendCPU(b, dsn)
	ctx := b.Context()
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close(ctx)
	const pages = 500
	site := testsite.NewBench(testsite.Scenario{Pages: pages})
	langs := []string{"simple", "english"}
	ids := map[string]int64{}
	for _, lang := range langs {
		tg, err := s.CreateTarget(ctx, target.Spec{Name: lang, SeedURL: "http://" + lang + ".test/", Scope: "host",
			MaxDepth: 1, MaxPages: 10 * pages, MaxAttempts: 1, SearchLanguage: lang})
		if err != nil {
			b.Fatal(err)
		}
		ids[lang] = tg.ID
		urls, titles, texts := make([]string, pages), make([]string, pages), make([]string, pages)
		for i := range pages {
			urls[i] = fmt.Sprintf("http://%s.test/p/%d", lang, i+1)
			titles[i] = fmt.Sprintf("Page %d", i+1)
			texts[i] = site.Text(i)
		}
		if _, err := db.Exec(ctx, `
			WITH u AS (
				INSERT INTO urls (target_id, url, host, depth, state)
				SELECT $1, url, $2, 1, 'done' FROM unnest($3::text[]) url RETURNING id, url)
			INSERT INTO pages (url_id, target_id, url, final_url, status, title, body_text, fetched_at)
			SELECT u.id, $1, u.url, u.url, 200, v.title, v.body, now()
			FROM u JOIN unnest($3::text[], $4::text[], $5::text[]) v(url, title, body) ON v.url = u.url`,
			tg.ID, lang+".test", urls, titles, texts); err != nil {
			b.Fatal(err)
		}
	}
	drain := func() int {
		n := 0
		for {
			claimed, indexed, err := s.IndexPages(ctx, 100)
			if err != nil {
				b.Fatal(err)
			}
			n += indexed
			if claimed == 0 {
				return n
			}
		}
	}
	drain()
	spent := map[string][2]time.Duration{} // CPU, wall
	for b.Loop() {
		for _, lang := range langs {
			b.StopTimer()
			if _, err := db.Exec(ctx, `INSERT INTO search_queue (url_id) SELECT url_id FROM pages WHERE target_id = $1`, ids[lang]); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			c0, t0 := cpu(), time.Now()
			if n := drain(); n != pages {
				b.Fatalf("%s: indexed %d pages, want %d", lang, n, pages)
			}
			d := spent[lang]
			spent[lang] = [2]time.Duration{d[0] + cpu() - c0, d[1] + time.Since(t0)}
		}
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N*pages) }
	for _, lang := range langs {
		b.ReportMetric(per(spent[lang][0]), lang+"-cpu-ms/page")
		b.ReportMetric(per(spent[lang][1]), lang+"-wall-ms/page")
	}
	if spent["simple"][0] > 0 && spent["simple"][1] > 0 {
		b.ReportMetric(float64(spent["english"][0])/float64(spent["simple"][0]), "english/simple-cpu")
		b.ReportMetric(float64(spent["english"][1])/float64(spent["simple"][1]), "english/simple-wall")
	}
}
