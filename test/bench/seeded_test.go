package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/process"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
	"github.com/trawlhq/trawl/test/testsite"
)

// seedHosts is how many hosts the seeded frontier's URLs are spread over.
const seedHosts = 300

// seedTemplate creates a migrated database holding a finished target of n URLs and n pages
// (store.BulkLoadDone, COPY) on other hosts than the site's, closes every connection to it, and
// returns its URL and how long the load took. Each trawl-seeded run gets a file copy of it
// (testenv.DatabaseFrom), so BENCH_RUNS seeded runs cost one load. It is dropped when t ends.
func seedTemplate(t *testing.T, n int) (dsn string, seconds float64) {
	t.Helper()
	ctx := t.Context()
	dsn = testenv.Database(t)
	st, err := store.Open(ctx, dsn, 2, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tg, err := st.BulkLoadDone(ctx, store.BulkLoad{Name: "seeded", URLs: n, Hosts: seedHosts, TextBytes: 500})
	if err != nil {
		t.Fatal(err)
	}
	seconds = time.Since(start).Seconds()
	if tg.URLsTotal != int64(n) || tg.URLsDone != int64(n) || tg.State != store.TargetDone {
		t.Fatalf("seeded target: state %s, %d of %d done; want done, %d of %d", tg.State, tg.URLsDone, tg.URLsTotal, n, n)
	}
	t.Logf("seeded %d URLs and %d pages on %d hosts in %.1fs (%.0f rows/s each)", n, n, seedHosts, seconds, float64(n)/seconds)
	return dsn, seconds
}

// autoExplain makes every statement on a connection send its actual plan back as a notice.
var autoExplain = []string{
	`LOAD 'auto_explain'`,
	`SET auto_explain.log_min_duration = 0`,
	`SET auto_explain.log_analyze = on`,
	`SET auto_explain.log_buffers = on`,
	`SET auto_explain.log_nested_statements = on`,
	`SET auto_explain.log_level = notice`,
}

var seqScanBig = regexp.MustCompile(`Seq Scan on (urls|pages|links|page_fetches|page_search|search_queue)\b`)

// explainSeeded records the real plans of the scheduler's dispatch and the processor's persist
// on the seeded database (the workers must be stopped): it creates a second target on the
// site, then dispatches its seed, persists the seed's page, dispatches the seed's links and
// persists them as one batch, all through a store whose connection runs auto_explain. Every
// plan goes to $BENCH_OUT/explain-seeded.txt; it returns the statements that scanned a large
// table sequentially.
func explainSeeded(t *testing.T, base string, cfg config, dsn string, seeded int) (seqScans []string) {
	t.Helper()
	ctx := t.Context()
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pc.MaxConns = 1 // one connection: every statement goes through the hooks below
	var mu sync.Mutex
	var notices []string
	pc.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		defer mu.Unlock()
		notices = append(notices, n.Message)
	}
	pc.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		for _, q := range autoExplain {
			if _, err := c.Exec(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	}
	st, err := store.OpenConfig(ctx, pc, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	var b strings.Builder
	fmt.Fprintf(&b, "# Actual plans on the seeded database (%d URLs and %d pages of a done target, plus the site's %d pages)\n", seeded, seeded, cfg.Pages)
	fmt.Fprintf(&b, "# %s. Captured with auto_explain (log_analyze, log_buffers, nested statements) on the bench's own connection.\n", time.Now().UTC().Format(time.DateTime+" MST"))
	capture := func(what string, fn func() int) {
		mu.Lock()
		notices = nil
		mu.Unlock()
		n := fn()
		mu.Lock()
		got := slices.Clone(notices)
		mu.Unlock()
		fmt.Fprintf(&b, "\n\n######## %s (%d rows)\n", what, n)
		for _, plan := range got {
			fmt.Fprintf(&b, "\n%s\n", plan)
			if m := seqScanBig.FindString(plan); m != "" {
				seqScans = append(seqScans, fmt.Sprintf("%s: %s in %s", what, m, queryText(plan)))
			}
		}
	}

	seed, err := crawlurl.Canonicalize(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	tgt, err := st.CreateTarget(ctx, target.Spec{Name: "explain", SeedURL: seed, Scope: "host",
		MaxDepth: 1000, MaxPages: cfg.Pages * 2, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	pol := process.Policy{RetryBase: time.Second, RetryMax: time.Minute, Canon: crawlurl.Default}
	lim := store.DispatchLimits{MaxInFlight: 4000, HostMaxInFlight: 2000, Hosts: 500, Lease: time.Hour} // the processor's defaults
	pageOf := map[string]int{}
	for i := range cfg.Pages {
		u := base + testsite.PagePath(i)
		pageOf[u] = i
		if c, err := crawlurl.Canonicalize(u); err == nil {
			pageOf[c] = i
		}
	}
	var jobs []store.Job
	dispatch := func() int {
		var err error
		if jobs, err = st.Dispatch(ctx, lim); err != nil {
			t.Fatal(err)
		}
		return len(jobs)
	}
	apply := func() int {
		rs := make([]store.Result, len(jobs))
		for i, j := range jobs {
			n, ok := pageOf[j.URL]
			if !ok {
				t.Fatalf("dispatched %q, not a site page", j.URL)
			}
			rs[i] = result(j, n, cfg)
		}
		if _, err := st.ApplyResults(ctx, rs, pol); err != nil {
			t.Fatal(err)
		}
		return len(rs)
	}
	capture("store.Dispatch: the new target's seed", dispatch)
	capture("store.ApplyResults: the seed's page", apply)
	capture("store.Dispatch: the seed's links", dispatch)
	capture("store.ApplyResults: one batch of those pages", apply)
	capture("store.IndexPages: the processors' search indexer, one batch of 100", func() int {
		_, n, err := st.IndexPages(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		return n
	})
	if got, err := st.Target(ctx, tgt.ID); err != nil || got.URLsDone < 2 {
		t.Errorf("explain target: %+v, %v; want its seed and a batch done", got, err)
	}
	if len(seqScans) > 0 {
		fmt.Fprintf(&b, "\n\n######## Sequential scans of large tables\n%s\n", strings.Join(seqScans, "\n"))
	}
	file := filepath.Join(cfg.OutDir, "explain-seeded.txt")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("plans of dispatch and persist on the seeded database: %s (%d sequential scans of urls, pages, links, page_fetches, page_search or search_queue)", file, len(seqScans))
	return seqScans
}

// queryText is the first line of the statement an auto_explain plan is for, cut to 200 bytes.
func queryText(plan string) string {
	_, q, ok := strings.Cut(plan, "Query Text: ")
	if !ok {
		return "?"
	}
	q, _, _ = strings.Cut(strings.TrimSpace(q), "\n")
	return q[:min(200, len(q))]
}
