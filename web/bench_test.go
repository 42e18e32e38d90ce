package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/service"
	"github.com/trawlhq/trawl/store"
)

// BenchmarkDashboardPages renders every dashboard page through the full HTTP handler (routing,
// middleware, queries, templ rendering) against the 1,000,000-page database that
// BenchmarkDashboardQueries in store/ seeds (trawl_bench_1m). Seed it first:
//
//	go test -run '^$' -bench BenchmarkDashboardQueries -benchtime 1x ./store
//	go test -run '^$' -bench BenchmarkDashboardPages ./web
//
// The goal is under 200 ms per page.
func BenchmarkDashboardPages(b *testing.B) {
	ctx := context.Background()
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	u, err := url.Parse(admin)
	if err != nil {
		b.Fatal(err)
	}
	u.Path = "/trawl_bench_1m"
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		b.Skipf("trawl_bench_1m not available (run BenchmarkDashboardQueries in ./store first): %v", err)
	}
	var seeded string
	var seedID int64
	err = conn.QueryRow(ctx, `SELECT version FROM bench_seed`).Scan(&seeded)
	if err == nil {
		// The seed is linked from every page: the biggest inlink list.
		err = conn.QueryRow(ctx, `SELECT id FROM urls WHERE target_id = 1 AND depth = 0 ORDER BY id LIMIT 1`).Scan(&seedID)
	}
	conn.Close(ctx)
	if err != nil {
		b.Skipf("trawl_bench_1m is not seeded (run BenchmarkDashboardQueries in ./store first): %v", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(ctx, u.String(), 8, log)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.CheckSchema(ctx); err != nil {
		b.Skipf("trawl_bench_1m: %v", err)
	}
	pl, err := st.Pages(ctx, store.PageQuery{TargetID: 1, Limit: 50})
	if err != nil || len(pl.Rows) == 0 {
		b.Fatalf("pages: %v", err)
	}
	srv := &Server{Store: st, Log: log, Auth: NewAuth(""), Workers: NewWorkers(nil),
		Checks: map[string]service.Check{"database": st.Ping}}
	h := srv.Handler()
	mid := pl.Rows[len(pl.Rows)/2].URLID
	pages := []struct{ name, path string }{
		{"overview", "/"},
		{"targets", "/targets"},
		{"target", "/targets/1"},
		{"target_pages_by_size", "/targets/1?sort=size&desc=1"},
		{"target_pages_4xx", "/targets/1?status=4xx"},
		{"target_pages_next", "/targets/1?after=" + url.QueryEscape(pl.NextCursor)},
		{"search", "/search?q=crawl"},
		{"search_target", "/search?q=crawl+pipeline&target=1"},
		{"page", "/pages/" + strconv.FormatInt(mid, 10)},
		{"page_seed_many_inlinks", "/pages/" + strconv.FormatInt(seedID, 10)},
		{"retries", "/retries"},
		{"retries_target", "/retries?target=1"},
		{"workers", "/workers"},
		{"api_overview", "/api/overview"},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			var worst time.Duration
			for b.Loop() {
				start := time.Now()
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p.path, nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("%s = %d: %s", p.path, rec.Code, rec.Body.String())
				}
				worst = max(worst, time.Since(start))
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
		})
	}
}
