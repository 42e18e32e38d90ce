package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trawlhq/trawl/migrations"
)

// BenchmarkDashboardQueries times every dashboard query against a database with a target of
// 1,000,000 pages (1,060,000 URLs, 6M links) and ten small ones. The data is seeded once, with generate_series on the server, into the
// persistent database trawl_bench_1m (it takes some minutes) and reused by later runs; it is
// seeded again when the schema or the seed changes. The benchmark only reads.
//
//	go test -run '^$' -bench BenchmarkDashboardQueries -benchtime 20x -timeout 0 ./store
//
// Every query's plan is checked once with EXPLAIN ANALYZE: a sequential scan of a big table
// fails the benchmark. TRAWL_BENCH_EXPLAIN=1 logs the plans.
func BenchmarkDashboardQueries(b *testing.B) {
	s, tr := openBenchDB(b)
	ctx := context.Background()

	// Cursors and ids for "next page" and detail queries, found before timing.
	pl, err := s.Pages(ctx, PageQuery{TargetID: 1, Limit: 50})
	if err != nil {
		b.Fatal(err)
	}
	sr, err := s.Search(ctx, SearchQuery{Query: "crawl", Limit: 20})
	if err != nil {
		b.Fatal(err)
	}
	rt, err := s.Retrying(ctx, URLFilter{Limit: 50})
	if err != nil {
		b.Fatal(err)
	}
	fl, err := s.Failed(ctx, URLFilter{Limit: 50})
	if err != nil {
		b.Fatal(err)
	}
	tl, err := s.TargetList(ctx, TargetQuery{Limit: 5})
	if err != nil {
		b.Fatal(err)
	}

	type query struct {
		name string
		run  func() error
	}
	queries := []query{
		{"Overview", func() error { _, err := s.Overview(ctx); return err }},
		{"Throughput/all-15m-10s", func() error { _, err := s.Throughput(ctx, 0, 15*time.Minute, 10*time.Second); return err }},
		{"Throughput/target-15m-10s", func() error { _, err := s.Throughput(ctx, 1, 15*time.Minute, 10*time.Second); return err }},
		{"Throughput/target-24h-5m", func() error { _, err := s.Throughput(ctx, 1, 24*time.Hour, 5*time.Minute); return err }},
		{"TargetList", func() error { _, err := s.TargetList(ctx, TargetQuery{}); return err }},
		{"TargetList/page2", func() error { _, err := s.TargetList(ctx, TargetQuery{Limit: 5, After: tl.NextCursor}); return err }},
		{"TargetSummary", func() error { _, err := s.TargetSummary(ctx, 1); return err }},
		{"TargetHosts", func() error { _, err := s.TargetHosts(ctx, 1, "", 50); return err }},
		{"TargetErrors", func() error { _, err := s.TargetErrors(ctx, 1, 20); return err }},
		{"Pages/url", func() error { _, err := s.Pages(ctx, PageQuery{TargetID: 1}); return err }},
		{"Pages/url-page2", func() error { _, err := s.Pages(ctx, PageQuery{TargetID: 1, After: pl.NextCursor}); return err }},
		{"Pages/fetched_at-desc", func() error {
			_, err := s.Pages(ctx, PageQuery{TargetID: 1, Sort: SortFetchedAt, Desc: true})
			return err
		}},
		{"Pages/status-4xx", func() error {
			_, err := s.Pages(ctx, PageQuery{TargetID: 1, Sort: SortStatus, Status: "4xx"})
			return err
		}},
		{"Pages/size-desc-pdf", func() error {
			_, err := s.Pages(ctx, PageQuery{TargetID: 1, Sort: SortSize, Desc: true, ContentType: "application/pdf"})
			return err
		}},
		{"Pages/url-status-500", func() error { _, err := s.Pages(ctx, PageQuery{TargetID: 1, Status: "500"}); return err }},
		{"Pages/small-target", func() error { _, err := s.Pages(ctx, PageQuery{TargetID: 5, Sort: SortSize}); return err }},
		{"Search/common-word", func() error { _, err := s.Search(ctx, SearchQuery{Query: "crawl"}); return err }},
		{"Search/common-word-page2", func() error { _, err := s.Search(ctx, SearchQuery{Query: "crawl", After: sr.NextCursor}); return err }},
		{"Search/frequent-word", func() error { _, err := s.Search(ctx, SearchQuery{Query: "w1"}); return err }},
		{"Search/rare-word", func() error { _, err := s.Search(ctx, SearchQuery{Query: "zebra"}); return err }},
		{"Search/medium-word", func() error { _, err := s.Search(ctx, SearchQuery{Query: "quasar"}); return err }},
		{"Search/two-words", func() error { _, err := s.Search(ctx, SearchQuery{Query: "quasar w2"}); return err }},
		{"Search/phrase", func() error { _, err := s.Search(ctx, SearchQuery{Query: `"page 123456"`}); return err }},
		{"Search/no-match", func() error { _, err := s.Search(ctx, SearchQuery{Query: "nosuchword"}); return err }},
		{"Search/small-target", func() error { _, err := s.Search(ctx, SearchQuery{Query: "crawl", TargetID: 5}); return err }},
		{"PageDetail/middle", func() error { _, err := s.PageDetail(ctx, 500000); return err }},
		{"PageDetail/seed-1M-inlinks", func() error { _, err := s.PageDetail(ctx, 1); return err }},
		{"PageDetail/retrying", func() error { _, err := s.PageDetail(ctx, 1055555); return err }},
		{"FetchHistory", func() error { _, err := s.FetchHistory(ctx, 500000, 50); return err }},
		{"Retrying", func() error { _, err := s.Retrying(ctx, URLFilter{}); return err }},
		{"Retrying/page2", func() error { _, err := s.Retrying(ctx, URLFilter{After: rt.NextCursor}); return err }},
		{"Retrying/target-host", func() error {
			_, err := s.Retrying(ctx, URLFilter{TargetID: 1, Host: "h7.big.test"})
			return err
		}},
		{"Retrying/class", func() error { _, err := s.Retrying(ctx, URLFilter{ErrorClass: "timeout"}); return err }},
		{"Failed", func() error { _, err := s.Failed(ctx, URLFilter{}); return err }},
		{"Failed/page2", func() error { _, err := s.Failed(ctx, URLFilter{After: fl.NextCursor}); return err }},
		{"Failed/target-host", func() error { _, err := s.Failed(ctx, URLFilter{TargetID: 1, Host: "h7.big.test"}); return err }},
		{"ExportPages/1000-pages", func() error {
			return s.ExportPages(ctx, 5, true, func(ExportRow) error { return nil })
		}},
	}
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			tr.explain(b, s.pool, q.run, strings.HasPrefix(q.name, "ExportPages"))
			b.ResetTimer()
			for b.Loop() {
				if err := q.run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkExportMillion streams the million pages of the bench database's big target and
// reports rows/s and the peak heap, which stays flat. One pass takes seconds: run it with the
// default -benchtime.
func BenchmarkExportMillion(b *testing.B) {
	s, _ := openBenchDB(b)
	ctx := context.Background()
	var peak uint64
	rows := 0
	var elapsed time.Duration
	for b.Loop() {
		rows = 0
		start := time.Now()
		err := s.ExportPages(ctx, 1, true, func(r ExportRow) error {
			rows++
			if rows%50000 == 0 {
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapInuse)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(rows), "rows")
	b.ReportMetric(float64(rows*b.N)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}

// benchSeedVersion changes whenever the seed below changes, so that old data is replaced.
const benchSeedVersion = "2"

const benchDB = "trawl_bench_1m"

// benchVersion identifies the seed and the exact migrations it was loaded under.
func benchVersion(b *testing.B) string {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(migrations.FS, path)
		h.Write([]byte(path))
		h.Write(data)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return fmt.Sprintf("seed %s migrations %x", benchSeedVersion, h.Sum(nil)[:8])
}

func openBenchDB(b *testing.B) (*Store, *planTracer) {
	b.Helper()
	ctx := context.Background()
	adminURL := os.Getenv("TEST_DATABASE_URL")
	if adminURL == "" {
		adminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		if os.Getenv("CI") == "true" {
			b.Fatalf("PostgreSQL is required in CI: %v", err)
		}
		b.Skipf("PostgreSQL unreachable: %v", err)
	}
	defer admin.Close(ctx)
	// One seeder at a time, across processes.
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_lock(hashtext('trawl_bench_1m'))`); err != nil {
		b.Fatal(err)
	}
	defer admin.Exec(ctx, `SELECT pg_advisory_unlock(hashtext('trawl_bench_1m'))`) //nolint:errcheck

	u, err := url.Parse(adminURL)
	if err != nil {
		b.Fatal(err)
	}
	u.Path = "/" + benchDB
	dsn := u.String()

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, benchDB).Scan(&exists); err != nil {
		b.Fatal(err)
	}
	want := ""
	if exists {
		s, err := Open(ctx, dsn, 2, log)
		if err != nil {
			b.Fatal(err)
		}
		want = benchVersion(b)
		var have string
		_ = s.pool.QueryRow(ctx, `SELECT version FROM bench_seed`).Scan(&have)
		s.Close()
		if have != want {
			b.Logf("%s holds %q, want %q: seeding again", benchDB, have, want)
			exists = false
		}
	}
	if !exists {
		if _, err := admin.Exec(ctx, `DROP DATABASE IF EXISTS `+benchDB+` WITH (FORCE)`); err != nil {
			b.Fatal(err)
		}
		if _, err := admin.Exec(ctx, `CREATE DATABASE `+benchDB); err != nil {
			b.Fatal(err)
		}
		s, err := Open(ctx, dsn, 2, log)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		s.Close()
		start := time.Now()
		if err := seedBench(ctx, b, dsn, benchVersion(b)); err != nil {
			b.Fatalf("seed %s: %v", benchDB, err)
		}
		b.Logf("seeded %s in %s", benchDB, time.Since(start).Round(time.Second))
	}

	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 4
	tr := &planTracer{}
	cfg.ConnConfig.Tracer = tr
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	s := &Store{pool: pool, log: log}
	if err := s.CheckSchema(ctx); err != nil {
		b.Fatal(err)
	}
	return s, tr
}

// seedBench fills the bench database on the server side. Secondary indexes are dropped during
// the load and built again afterwards, as a restore would.
//
// Target 1 ("big") has 1,060,000 URLs on 100 hosts: 990,000 done (3% 404, 1% 301), 10,000
// failed (500), 200 dispatched, 39,800 queued and 10,000 retrying; 1,000,000 stored pages with
// about 40 words each, five links each plus one to the seed (6M edges), one fetch each plus
// four more for 1% of them, and 24 hours of per-second rates. Targets 2..11 have 1,000 done
// pages each.
func seedBench(ctx context.Context, b *testing.B, dsn, version string) error {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	step := func(name, sql string) error {
		start := time.Now()
		if _, err := c.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		b.Logf("seed: %s (%s)", name, time.Since(start).Round(time.Millisecond))
		return nil
	}
	if err := step("session", `SET synchronous_commit = off; SET maintenance_work_mem = '256MB'; SET work_mem = '64MB'`); err != nil {
		return err
	}
	// Save and drop the secondary indexes of the big tables.
	rows, err := c.Query(ctx, `
		SELECT i.indexname, i.indexdef FROM pg_indexes i
		WHERE i.schemaname = 'public' AND i.tablename IN ('urls', 'pages', 'page_search', 'page_fetches', 'links')
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conname = i.indexname)`)
	if err != nil {
		return err
	}
	defs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var d [2]string
		return d, r.Scan(&d[0], &d[1])
	})
	if err != nil {
		return err
	}
	for _, d := range defs {
		if _, err := c.Exec(ctx, `DROP INDEX `+d[0]); err != nil {
			return err
		}
	}
	steps := [][2]string{
		{"targets", `
			INSERT INTO targets (id, name, seed_url, scope, max_depth, max_pages, per_host_rps, state, created_at)
			VALUES (1, 'big', 'http://h0.big.test/page/1', 'domain', 20, 2000000, 2, 'active', now() - interval '1 day');
			INSERT INTO targets (id, name, seed_url, scope, max_depth, max_pages, per_host_rps, state, recrawl_interval, created_at, finished_at)
			SELECT i, 'small ' || i, 'http://s' || i || '.test/page/' || (1060000 + (i - 2) * 1000 + 1), 'host', 5, 1000, 0,
			       'done', interval '7 days', now() - interval '2 days', now() - interval '1 day'
			FROM generate_series(2, 11) i;
			SELECT setval('targets_id_seq', 11)`},
		{"hosts", `
			INSERT INTO hosts (host, min_interval_ms, crawl_delay_ms, robots_status, robots_fetched_at, next_fetch_at, fetches, errors)
			SELECT 'h' || i || '.big.test', 500, CASE WHEN i % 10 = 0 THEN 1000 ELSE 0 END, 200, now() - interval '1 hour',
			       now() + i * interval '10 milliseconds', 10000, 100
			FROM generate_series(0, 99) i;
			INSERT INTO hosts (host, robots_status, robots_fetched_at, fetches)
			SELECT 's' || i || '.test', 404, now() - interval '1 day', 1000 FROM generate_series(2, 11) i;
			INSERT INTO target_hosts (target_id, host) SELECT 1, 'h' || i || '.big.test' FROM generate_series(0, 99) i;
			INSERT INTO target_hosts (target_id, host) SELECT i, 's' || i || '.test' FROM generate_series(2, 11) i`},
		{"urls", `
			INSERT INTO urls (id, target_id, url, host, depth, state, attempts, next_attempt_at, lease_until, dispatches,
			                  last_status, last_error, error_class, etag, content_hash, discovered_at, fetched_at)
			SELECT i, t, 'http://' || h || '/page/' || i, h, i % 7, st,
			       CASE st WHEN 'failed' THEN 4 WHEN 'queued' THEN CASE WHEN i > 1050000 THEN 1 + i % 3 ELSE 0 END ELSE 0 END,
			       CASE WHEN st = 'queued' AND i > 1050000 THEN now() + (i % 3600) * interval '1 second' ELSE now() END,
			       CASE WHEN st = 'dispatched' THEN now() + interval '1 minute' END,
			       CASE WHEN st IN ('done', 'failed') THEN 1 ELSE 0 END,
			       CASE WHEN st = 'failed' THEN 500 WHEN st = 'done' THEN
			            CASE WHEN i % 100 < 3 THEN 404 WHEN i % 100 = 3 THEN 301 ELSE 200 END
			            WHEN st = 'queued' AND i > 1050000 AND i % 3 = 2 THEN 503 END,
			       CASE WHEN st = 'queued' AND i > 1050000 AND i % 3 <> 2 THEN 'Get "http://' || h || '/": ' ||
			            CASE i % 3 WHEN 0 THEN 'i/o timeout' ELSE 'connection refused' END END,
			       CASE WHEN st = 'failed' THEN 'http_500'
			            WHEN st = 'done' AND i % 100 < 3 THEN 'http_404'
			            WHEN st = 'queued' AND i > 1050000 THEN CASE i % 3 WHEN 0 THEN 'timeout' WHEN 1 THEN 'refused' ELSE 'http_503' END END,
			       CASE WHEN st IN ('done', 'failed') THEN '"' || i || '"' END,
			       CASE WHEN st IN ('done', 'failed') THEN md5(i::text) END,
			       now() - interval '1 day' + i * interval '50 milliseconds',
			       CASE WHEN st IN ('done', 'failed') THEN now() - interval '1 day' + i * interval '60 milliseconds' END
			FROM (
				SELECT i,
				       CASE WHEN i > 1060000 THEN 2 + (i - 1060001) / 1000 ELSE 1 END AS t,
				       CASE WHEN i > 1060000 THEN 's' || (2 + (i - 1060001) / 1000) || '.test' ELSE 'h' || (i % 100) || '.big.test' END AS h,
				       CASE WHEN i > 1060000 OR i <= 990000 THEN 'done' WHEN i <= 1000000 THEN 'failed'
				            WHEN i <= 1000200 THEN 'dispatched' ELSE 'queued' END AS st
				FROM generate_series(1, 1070000) i
			) v;
			SELECT setval('urls_id_seq', 1070000)`},
		{"pages", `
			INSERT INTO pages (url_id, target_id, url, final_url, status, content_type, title, body_text, size_bytes,
			                   duration_ms, link_count, links, content_hash, etag, last_modified, fetched_at, stored_at)
			SELECT u.id, u.target_id, u.url, u.url, u.last_status,
			       CASE WHEN u.id % 20 = 0 THEN 'application/pdf' ELSE 'text/html; charset=utf-8' END,
			       'Page ' || u.id || ' of ' || u.host,
			       'crawl page ' || u.id || ' ' ||
			       CASE WHEN u.id % 100000 = 7 THEN 'zebra ' ELSE '' END ||
			       CASE WHEN u.id % 1000 = 3 THEN 'quasar ' ELSE '' END ||
			       (SELECT string_agg('w' || floor(power(random(), 3) * 5000)::int, ' ')
			        FROM generate_series(1, 40 + u.id % 2 * 0)),
			       2000 + (u.id * 7919) % 100000, u.id % 900, 5,
			       ARRAY(SELECT 'http://h' || (j % 100) || '.big.test/page/' || j
			             FROM (SELECT (u.id * k * 7919) % 1060000 + 1 AS j FROM generate_series(1, 5) k) x),
			       u.content_hash, u.etag, '', u.fetched_at, u.fetched_at
			FROM urls u WHERE u.state IN ('done', 'failed')`},
		{"search", `
			INSERT INTO page_search (url_id, target_id, tsv)
			SELECT url_id, target_id, page_tsv(title, body_text) FROM pages;
			TRUNCATE search_queue`},
		{"links", `
			INSERT INTO links (to_url_id, from_url_id)
			SELECT DISTINCT j, id FROM (
				SELECT p.url_id AS id, (p.url_id * k * 7919) % 1060000 + 1 AS j
				FROM pages p, generate_series(1, 5) k WHERE p.target_id = 1
				UNION ALL
				SELECT url_id, 1 FROM pages WHERE target_id = 1 AND url_id <> 1
			) e WHERE j <> id
			ORDER BY 1, 2`},
		{"page_fetches", `
			INSERT INTO page_fetches (url_id, target_id, fetched_at, status, duration_ms, size, content_hash, changed, error_class)
			SELECT p.url_id, p.target_id, p.fetched_at - n * interval '1 day', p.status, p.duration_ms, p.size_bytes,
			       p.content_hash, n = 4, CASE WHEN p.status >= 400 THEN 'http_' || p.status END
			FROM pages p, generate_series(0, 4) n WHERE n = 0 OR p.url_id % 100 = 0`},
		{"fetch_rates", `
			INSERT INTO fetch_rates (target_id, at, pages, errors)
			SELECT 1, date_trunc('second', now()) - s * interval '1 second', 20 + s % 15, s % 3
			FROM generate_series(0, 86399) s;
			INSERT INTO fetch_rates (target_id, at, pages, errors)
			SELECT t, date_trunc('second', now()) - interval '1 day' - s * interval '1 second', 5, 0
			FROM generate_series(2, 11) t, generate_series(0, 199) s`},
		{"counters", `
			UPDATE targets t SET urls_total = c.total, urls_done = c.done, urls_failed = c.failed, urls_cancelled = 0
			FROM (SELECT target_id, count(*) AS total, count(*) FILTER (WHERE state = 'done') AS done,
			             count(*) FILTER (WHERE state = 'failed') AS failed
			      FROM urls GROUP BY target_id) c
			WHERE t.id = c.target_id`},
	}
	for _, st := range steps {
		if err := step(st[0], st[1]); err != nil {
			return err
		}
	}
	for _, d := range defs {
		if err := step("index "+d[0], d[1]); err != nil {
			return err
		}
	}
	if err := step("vacuum analyze", `VACUUM (ANALYZE)`); err != nil {
		return err
	}
	return step("mark", `CREATE TABLE bench_seed (version text NOT NULL); INSERT INTO bench_seed VALUES ('`+version+`')`)
}

// planTracer records the statements a store call sends, so that their plans can be checked.
type planTracer struct {
	mu    sync.Mutex
	on    bool
	stmts []tracedStmt
}

type tracedStmt struct {
	sql  string
	args []any
}

func (t *planTracer) record(sql string, args []any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.on {
		t.stmts = append(t.stmts, tracedStmt{sql, args})
	}
}

func (t *planTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	t.record(d.SQL, d.Args)
	return ctx
}

func (t *planTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (t *planTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	for _, q := range d.Batch.QueuedQueries {
		t.record(q.SQL, q.Arguments)
	}
	return ctx
}

func (t *planTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (t *planTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// bigSeqScan matches a sequential scan of a table that has a million rows.
var bigSeqScan = regexp.MustCompile(`Seq Scan on (urls|pages|page_fetches|links|fetch_rates)\b`)

// explain runs fn once while recording its statements, then EXPLAIN ANALYZEs each of them.
func (t *planTracer) explain(b *testing.B, pool *pgxpool.Pool, fn func() error, allowSeq bool) {
	b.Helper()
	t.mu.Lock()
	t.on, t.stmts = true, nil
	t.mu.Unlock()
	err := fn()
	t.mu.Lock()
	t.on = false
	stmts := t.stmts
	t.mu.Unlock()
	if err != nil {
		b.Fatal(err)
	}
	// Replay in one transaction, in order, so that transaction-local planner settings apply
	// as they did.
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	for _, st := range stmts {
		sql := strings.TrimSpace(st.sql)
		lower := strings.ToLower(sql)
		switch {
		case strings.HasPrefix(lower, "begin"), strings.HasPrefix(lower, "commit"), strings.HasPrefix(lower, "rollback"),
			strings.HasPrefix(sql, "SELECT EXISTS"):
			continue
		case strings.HasPrefix(sql, "SELECT set_config"):
			if _, err := tx.Exec(ctx, sql, st.args...); err != nil {
				b.Fatalf("%s: %v", sql, err)
			}
			continue
		}
		rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sql, st.args...)
		if err != nil {
			b.Fatalf("explain %s: %v", sql, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			b.Fatalf("explain %s: %v", sql, err)
		}
		plan := strings.Join(lines, "\n")
		if os.Getenv("TRAWL_BENCH_EXPLAIN") == "1" {
			b.Logf("\n%s\n%s", sql, plan)
		}
		if m := bigSeqScan.FindString(plan); m != "" && !allowSeq {
			b.Errorf("%s in the plan of\n%s\n%s", m, sql, plan)
		}
	}
}
