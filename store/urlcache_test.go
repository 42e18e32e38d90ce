package store_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

// graphResult is page i of a 60-page site whose links repeat, loop back, point at the page
// itself, leave the host and carry fragments: the cases where the URL cache must agree with the
// database.
func graphResult(j store.Job) store.Result {
	var i int
	if _, err := fmt.Sscanf(j.URL, "http://example.test/p/%d", &i); err != nil {
		i = 0
	}
	const n = 60
	link := func(k int) string { return fmt.Sprintf("http://example.test/p/%d", k%n) }
	r := ok(j, link(i+1), link(i*7), link(i*7), link(i), link(i+2)+"#frag", link(0), "http://other.test/x")
	r.ContentHash = fmt.Sprintf("h%d", i)
	return r
}

type crawlState struct {
	urls  []string // url state
	edges []string // from -> to
	tgt   store.Target
}

func crawlGraph(t *testing.T, cache int, mut func(*target.Spec)) (crawlState, int64) {
	t.Helper()
	s, dsn := testenv.Store(t)
	s.SetURLCache(cache)
	tg := newTarget(t, s, "http://example.test/p/0", mut)
	crawlOut(t, s, graphResult)
	c := conn(t, dsn)
	texts := func(sql string) []string {
		t.Helper()
		rows, err := c.Query(t.Context(), sql)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	st := crawlState{
		urls:  texts(`SELECT url || ' ' || state FROM urls ORDER BY 1`),
		edges: texts(`SELECT f.url || ' -> ' || u.url FROM links l JOIN urls f ON f.id = l.from_url_id JOIN urls u ON u.id = l.to_url_id ORDER BY 1`),
	}
	st.tgt = loadTarget(t, s, tg.ID)
	st.tgt.ID = 0
	return st, store.URLCacheHits(s)
}

// TestURLCacheMatchesDatabase crawls the same site into two databases, one processor without the
// URL cache and one with a cache small enough to evict, and requires the same frontier, the same
// edges and the same target counters, with the cache actually used.
func TestURLCacheMatchesDatabase(t *testing.T) {
	t.Parallel()
	deep := func(nt *target.Spec) { nt.MaxDepth = 100; nt.MaxPages = 1000 }
	shallow := func(nt *target.Spec) { nt.MaxDepth = 2; nt.MaxPages = 1000 } // edges beyond max_depth
	for name, mut := range map[string]func(*target.Spec){"deep": deep, "shallow": shallow} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, _ := crawlGraph(t, 0, mut)
			got, hits := crawlGraph(t, 16, mut)
			if hits == 0 {
				t.Fatal("the cache was never hit")
			}
			opt := cmp.AllowUnexported(crawlState{})
			ignore := cmp.FilterPath(func(p cmp.Path) bool {
				n := p.Last().String()
				return n == ".CreatedAt" || n == ".UpdatedAt" || n == ".FinishedAt"
			}, cmp.Ignore())
			if diff := cmp.Diff(want, got, opt, ignore); diff != "" {
				t.Errorf("with the URL cache (-without +with):\n%s", diff)
			}
			if len(want.edges) == 0 || len(want.urls) < 5 {
				t.Fatalf("crawl too small to compare: %d urls, %d edges", len(want.urls), len(want.edges))
			}
		})
	}
}

// TestURLCacheKeepsMaxPages caps a target below the site's size: with the cache, known links are
// skipped before the insert, and max_pages must still hold exactly.
func TestURLCacheKeepsMaxPages(t *testing.T) {
	t.Parallel()
	st, hits := crawlGraph(t, 1000, func(nt *target.Spec) { nt.MaxDepth = 100; nt.MaxPages = 25 })
	if hits == 0 {
		t.Fatal("the cache was never hit")
	}
	if len(st.urls) != 25 || st.tgt.URLsTotal != 25 || st.tgt.State != store.TargetDone {
		t.Fatalf("%d urls, target %+v; want exactly 25 and done", len(st.urls), st.tgt)
	}
}
