package chaos

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/test/harness"
	"github.com/trawlhq/trawl/test/testenv"
)

// TestKillProcessorMidDelete deletes a large target through the API while a crawl of another
// target runs, kills the only processor with SIGKILL while its deleter is half way through the
// target's rows, and starts a new one: the deletion goes on from where it stopped and the target
// disappears, with none of its rows left, no deadlock in the database, and the other crawl
// complete (every page stored once, nothing dead-lettered).
func TestKillProcessorMidDelete(t *testing.T) {
	t.Parallel()
	urls := 20000
	if full {
		urls = 100000
	}
	// Small purge batches, so that the deletion takes many transactions and the kill lands
	// among them.
	sys := crashSystem(t, append(chaosEnv, "TRAWL_TARGET_DELETE_BATCH=20")...)
	db, err := store.Open(t.Context(), sys.DSN, 2, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	big, err := db.BulkLoadDone(t.Context(), store.BulkLoad{Name: "big", URLs: urls, Hosts: 50, Unindexed: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	workers := sys.StartAll(1, 1)
	victim := workers[1]
	r := startRun(t, "kill-processor-mid-delete", sys, testenv.AMQPURL(), newSite(t, sitePages(), 0))
	r.waitStored(sitePages() / 10)

	path := "/api/targets/" + strconv.FormatInt(big.ID, 10)
	var st harness.TargetStatus
	if code := sys.API(http.MethodDelete, path, nil, &st); code != http.StatusAccepted || st.State != store.TargetDeleting {
		t.Fatalf("DELETE %s = %d %+v, want 202 and the target deleting", path, code, st)
	}
	left := func() int64 {
		t.Helper()
		var n int64
		if err := r.db.QueryRow(ctx, `SELECT count(*) FROM urls WHERE target_id = $1`, big.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	testenv.Eventually(t, time.Minute, 5*time.Millisecond, "the deletion to start", func() bool {
		return left() < int64(urls)*9/10
	})
	sys.Kill(victim)
	if code, _ := victim.Wait(time.Second); code != -1 {
		t.Fatalf("processor exit status %d after SIGKILL, want -1 (signal)", code)
	}
	n := left()
	if n == 0 {
		t.Fatalf("the deletion was over before the kill: the test proves nothing (raise the URLs)")
	}
	if code := sys.API(http.MethodGet, path, nil, &st); code != http.StatusOK || st.State != store.TargetDeleting {
		t.Fatalf("GET %s after the kill = %d %+v, want the target still deleting", path, code, st)
	}
	t.Logf("killed the processor with %d of %d URLs left", n, urls)
	sys.Start("processor", nil)
	r.faults++
	testenv.Eventually(t, 3*time.Minute, 50*time.Millisecond, "the target to be gone", func() bool {
		return sys.API(http.MethodGet, path, nil, nil) == http.StatusNotFound
	})
	for _, tb := range []string{"urls", "pages", "page_search", "page_fetches", "fetch_rates", "target_hosts", "sitemaps"} {
		var n int64
		if err := r.db.QueryRow(ctx, `SELECT count(*) FROM `+tb+` WHERE target_id = $1`, big.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s holds %d rows of the deleted target", tb, n)
		}
	}
	if code := sys.API(http.MethodDelete, path, nil, nil); code != http.StatusNotFound {
		t.Errorf("DELETE %s once gone = %d, want 404", path, code)
	}
	r.recovered(time.Now())
	r.finish()
	// Best effort: a backend reports its statistics when it is idle or exits, as the killed
	// processor's did.
	var dl int64
	if err := r.db.QueryRow(context.Background(), `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`).Scan(&dl); err != nil {
		t.Fatal(err)
	}
	if dl != 0 {
		t.Errorf("Postgres detected %d deadlocks", dl)
	}
}

// TestDeleteTargetsWhileCrawling deletes targets through the API while two processors store
// their results and the scheduler dispatches them, round after round, next to the crawl of
// another target: every DELETE answers 202, every deleted target disappears, Postgres detects no
// deadlock, their late results are dropped rather than dead-lettered, and the other crawl ends
// complete.
func TestDeleteTargetsWhileCrawling(t *testing.T) {
	t.Parallel()
	rounds := 3
	if full {
		rounds = 8
	}
	sys := crashSystem(t, chaosEnv...)
	sys.StartAll(2, 2)
	r := startRun(t, "delete-while-crawling", sys, testenv.AMQPURL(), newSite(t, sitePages(), 0))
	doomed := newSite(t, 3000, 0)
	ctx := t.Context()
	for round := range rounds {
		var created harness.TargetStatus
		body := map[string]any{"seed_url": doomed.SeedURL(), "name": "doomed-" + strconv.Itoa(round), "max_depth": 1000,
			"max_pages": 1000000, "per_host_rps": 0}
		if code := sys.API(http.MethodPost, "/api/targets", body, &created); code != http.StatusCreated {
			t.Fatalf("round %d: POST /api/targets = %d", round, code)
		}
		testenv.Eventually(t, 2*time.Minute, 5*time.Millisecond, "the doomed target's pages being stored", func() bool {
			var n int
			err := r.db.QueryRow(ctx, `SELECT count(*) FROM pages WHERE target_id = $1`, created.ID).Scan(&n)
			return err == nil && n >= 200
		})
		path := "/api/targets/" + strconv.FormatInt(created.ID, 10)
		var st harness.TargetStatus
		if code := sys.API(http.MethodDelete, path, nil, &st); code != http.StatusAccepted || st.State != store.TargetDeleting {
			t.Fatalf("round %d: DELETE %s = %d %+v, want 202 and the target deleting", round, path, code, st)
		}
		testenv.Eventually(t, 2*time.Minute, 20*time.Millisecond, "the deleted target to be gone", func() bool {
			return sys.API(http.MethodGet, path, nil, nil) == http.StatusNotFound
		})
	}
	var left int64
	if err := r.db.QueryRow(ctx, `SELECT count(*) FROM urls u JOIN targets t ON t.id = u.target_id WHERE t.id <> $1`, r.id).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d URLs of deleted targets are left", left)
	}
	r.recovered(time.Now())
	r.finish() // also: nothing dead-lettered, so no late result of a deleted target was
	var dl int64
	if err := r.db.QueryRow(ctx, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`).Scan(&dl); err != nil {
		t.Fatal(err)
	}
	if dl != 0 {
		t.Errorf("Postgres detected %d deadlocks", dl)
	}
}
