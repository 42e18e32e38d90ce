package store_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/internal/testenv"
	"github.com/trawlhq/trawl/store"
)

// TestDiscoverURLsProbesIndex checks the plans of the discovered-URL inserts, generic plans made
// while the table looks small as the processor's cached statements are. Pulled up into an anti
// join, the NOT EXISTS compared every URL of the target with every link, so each batch cost more
// as the frontier grew (issue #6). With room for every link, the unique index alone must reject
// the known URLs (no scan of urls at all); near max_pages, NOT EXISTS must stay a per-link
// subplan.
func TestDiscoverURLsProbesIndex(t *testing.T) {
	s, dsn := testenv.Store(t)
	ctx := t.Context()
	tg := newTarget(t, s, "http://example.test/", func(nt *store.NewTarget) { nt.MaxPages = 1000 })
	jobs := dispatch(t, s, limits)
	links := make([]string, 50)
	for i := range links {
		links[i] = fmt.Sprintf("http://example.test/p/%d", i)
	}
	apply(t, s, ok(jobs[0], links...))

	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	explain := func(name, query string) string {
		t.Helper()
		if _, err := c.Exec(ctx, `PREPARE `+name+` AS `+query); err != nil {
			t.Fatalf("prepare %s: %v", name, err)
		}
		rows, err := c.Query(ctx, fmt.Sprintf(
			`EXPLAIN (COSTS OFF) EXECUTE %s(%d, '{http://example.test/new}', '{example.test}', '{1}', 10)`, name, tg.ID))
		if err != nil {
			t.Fatalf("explain %s: %v", name, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("explain %s: %v", name, err)
		}
		return strings.Join(lines, "\n")
	}
	if plan := explain("insert_urls", store.InsertURLsSQL); strings.Contains(plan, "Join") || strings.Contains(plan, "on urls x") {
		t.Errorf("insert with room for every link reads urls besides the unique index:\n%s", plan)
	}
	if plan := explain("discover_urls", store.DiscoverURLsSQL); strings.Contains(plan, "Anti Join") || !strings.Contains(plan, "SubPlan") {
		t.Errorf("NOT EXISTS near max_pages is not a per-link subplan:\n%s", plan)
	}
}
