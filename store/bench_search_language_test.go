package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/store"
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
	s, dsn, db, ids := seedLanguages(b)
	ctx := b.Context()
	cpu := backendCPU(b, dsn)
	langs := []string{"simple", "english"}
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
	spent := map[string][2]time.Duration{} // CPU, wall
	for b.Loop() {
		for _, lang := range langs {
			b.StopTimer()
			if _, err := db.Exec(ctx, `INSERT INTO search_queue (url_id) SELECT url_id FROM pages WHERE target_id = $1`, ids[lang]); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			c0, t0 := cpu(), time.Now()
			if n := drain(); n != benchLanguagePages {
				b.Fatalf("%s: indexed %d pages, want %d", lang, n, benchLanguagePages)
			}
			d := spent[lang]
			spent[lang] = [2]time.Duration{d[0] + cpu() - c0, d[1] + time.Since(t0)}
		}
	}
	per := func(d time.Duration) float64 {
		return float64(d.Microseconds()) / 1000 / float64(b.N*benchLanguagePages)
	}
	for _, lang := range langs {
		b.ReportMetric(per(spent[lang][0]), lang+"-cpu-ms/page")
		b.ReportMetric(per(spent[lang][1]), lang+"-wall-ms/page")
	}
	if spent["simple"][0] > 0 && spent["simple"][1] > 0 {
		b.ReportMetric(float64(spent["english"][0])/float64(spent["simple"][0]), "english/simple-cpu")
		b.ReportMetric(float64(spent["english"][1])/float64(spent["simple"][1]), "english/simple-wall")
	}
}

// benchLanguagePages is the number of pages of each language seedLanguages stores.
const benchLanguagePages = 500

// seedLanguages stores two targets, one 'simple' and one 'english', of benchLanguagePages pages
// of the throughput bench's 8 KB text (testsite.Bench) each, and indexes them.
func seedLanguages(b *testing.B) (*store.Store, string, *pgx.Conn, map[string]int64) {
	s, dsn := testenv.Store(b)
	ctx := b.Context()
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close(context.Background()) })
	site := testsite.NewBench(testsite.Scenario{Pages: benchLanguagePages})
	ids := map[string]int64{}
	for _, lang := range []string{"simple", "english"} {
		tg, err := s.CreateTarget(ctx, target.Spec{Name: lang, SeedURL: "http://" + lang + ".test/", Scope: "host",
			MaxDepth: 1, MaxPages: 10 * benchLanguagePages, MaxAttempts: 1, SearchLanguage: lang})
		if err != nil {
			b.Fatal(err)
		}
		ids[lang] = tg.ID
		n := benchLanguagePages
		urls, titles, texts := make([]string, n), make([]string, n), make([]string, n)
		for i := range n {
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
	for {
		claimed, _, err := s.IndexPages(ctx, 100)
		if err != nil {
			b.Fatal(err)
		}
		if claimed == 0 {
			return s, dsn, db, ids
		}
	}
}

// BenchmarkSearchRanksTheCap times one search whose every candidate is ranked: a word on each
// of the 1,000 pages of seedLanguages (8 KB each, two languages), so Search reads, ranks and
// sorts SearchCap vectors and parses the query twice (docs/adr/0056-ranked-search-per-target-language.md).
//
//	go test -run '^$' -bench SearchRanksTheCap ./store
func BenchmarkSearchRanksTheCap(b *testing.B) {
	s, _, _, _ := seedLanguages(b)
	ctx := b.Context()
	for b.Loop() {
		res, err := s.Search(ctx, store.SearchQuery{Query: "crawl"})
		if err != nil || res.Total != 2*benchLanguagePages || len(res.Hits) != 20 {
			b.Fatalf("Search = %d hits of %d, %v; want 20 of %d", len(res.Hits), res.Total, err, 2*benchLanguagePages)
		}
	}
}
