package store_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/migrations"
	"github.com/trawlhq/trawl/politeness"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(t.Context()) })
	return conn
}

// makeDue makes every host due now.
func makeDue(t *testing.T, dsn string) {
	t.Helper()
	if _, err := connect(t, dsn).Exec(t.Context(), `UPDATE hosts SET next_fetch_at = now()`); err != nil {
		t.Fatal(err)
	}
}

// hostPace returns a host's minimum interval and how far its next_fetch_at lies ahead of now.
func hostPace(t *testing.T, conn *pgx.Conn, host string) (int, time.Duration) {
	t.Helper()
	var ms int
	var ahead float64
	if err := conn.QueryRow(t.Context(), `SELECT min_interval_ms, extract(epoch FROM next_fetch_at - now())::float8 FROM hosts WHERE host = $1`,
		host).Scan(&ms, &ahead); err != nil {
		t.Fatalf("host %s: %v", host, err)
	}
	return ms, time.Duration(ahead * float64(time.Second))
}

// The SQL that recomputes host intervals rounds and clamps exactly as MinIntervalMS does, and
// never fails on a stored rate however small (rows written before rates were bounded).
func TestHostIntervalSQLMatchesGo(t *testing.T) {
	t.Parallel()
	_, dsn := testenv.Store(t)
	conn := connect(t, dsn)
	for _, rps := range []float64{0, 0.5, 1, 2, 3, 7, 10, 30, 333, 1000, 1e6, politeness.MinRPS, 1.0 / 86401,
		0.0000001, 3.3e-7, 1e-300, math.SmallestNonzeroFloat64, math.Inf(1), math.NaN()} {
		var got int
		if err := conn.QueryRow(t.Context(), `SELECT `+store.HostIntervalSQL+` FROM (SELECT $1::float8 AS per_host_rps) t`, rps).Scan(&got); err != nil {
			t.Fatalf("rps %g: %v", rps, err)
		}
		if want := store.MinIntervalMS(rps); got != want {
			t.Errorf("rps %g: SQL %d, Go %d", rps, got, want)
		}
	}
}

func TestCreateTargetRefusesABadRate(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	for _, rps := range []float64{0.0000001, 3.3e-7, -1, math.NaN(), math.Inf(1)} {
		_, err := s.CreateTarget(t.Context(), target.Spec{Name: "t", SeedURL: "http://example.test/",
			Scope: "host", MaxDepth: 1, MaxPages: 10, MaxAttempts: 1, PerHostRPS: rps})
		if !errors.Is(err, store.ErrInvalidTarget) {
			t.Errorf("CreateTarget(per_host_rps %g) = %v, want ErrInvalidTarget", rps, err)
		}
	}
	if ts, err := s.Targets(t.Context(), 10); err != nil || len(ts) != 0 {
		t.Fatalf("targets = %d, %v; want none stored", len(ts), err)
	}
}

// A host's minimum interval follows the targets active on it now, through every change of
// state: it falls when the strictest target stops being active, not only rises (issue #17).
func TestHostIntervalFollowsActiveTargets(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	conn := connect(t, dsn)
	ctx := t.Context()
	const host = "example.test"
	on := func(rps float64) func(*target.Spec) {
		return func(nt *target.Spec) { nt.PerHostRPS = rps }
	}
	check := func(step string, want int) {
		t.Helper()
		if got, _ := hostPace(t, conn, host); got != want {
			t.Errorf("after %s: min_interval_ms = %d, want %d", step, got, want)
		}
	}
	must := func(_ store.Target, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	a := newTarget(t, s, "http://example.test/a", on(10)) // 100 ms
	check("create a (10/s)", 100)
	b := newTarget(t, s, "http://example.test/b", on(1)) // 1000 ms
	check("create b (1/s)", 1000)
	must(s.PauseTarget(ctx, b.ID))
	check("pause b", 100)
	must(s.ResumeTarget(ctx, b.ID))
	check("resume b", 1000)
	must(s.CancelTarget(ctx, b.ID))
	check("cancel b", 100)
	c := newTarget(t, s, "http://example.test/c", on(0.5)) // 2000 ms
	check("create c (0.5/s)", 2000)
	if _, err := s.DeleteTarget(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	check("delete c", 100)
	must(s.PauseTarget(ctx, a.ID))
	check("pause a (no active target left)", 0)
	must(s.ResumeTarget(ctx, a.ID))
	check("resume a", 100)

	// A host held back for days by a rate from before rates were bounded is freed when the
	// target holding it goes: its next_fetch_at comes back to within the new gap.
	if _, err := conn.Exec(ctx, `UPDATE hosts SET min_interval_ms = 1410065408, next_fetch_at = now() + interval '16 days' WHERE host = $1`, host); err != nil {
		t.Fatal(err)
	}
	d := newTarget(t, s, "http://example.test/d", on(2))
	if ms, ahead := hostPace(t, conn, host); ms != 500 || ahead > 500*time.Millisecond {
		t.Errorf("stuck host after create d: min_interval_ms %d, next fetch in %v; want 500 and at most 500ms", ms, ahead)
	}
	if _, err := s.DeleteTarget(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	check("delete d", 100)
}

// A target that finishes stops pacing its hosts; re-crawling it paces them again.
func TestHostIntervalFollowsFinishAndRecrawl(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	conn := connect(t, dsn)
	ctx := t.Context()
	const host = "example.test"
	strict := newTarget(t, s, "http://example.test/strict", func(nt *target.Spec) { nt.PerHostRPS = 0.5 }) // 2000 ms
	newTarget(t, s, "http://example.test/loose", func(nt *target.Spec) { nt.PerHostRPS = 1 })              // 1000 ms
	if ms, _ := hostPace(t, conn, host); ms != 2000 {
		t.Fatalf("min_interval_ms = %d, want 2000", ms)
	}
	for range 10 {
		if loadTarget(t, s, strict.ID).State == store.TargetDone {
			break
		}
		if _, err := conn.Exec(ctx, `UPDATE hosts SET next_fetch_at = now()`); err != nil {
			t.Fatal(err)
		}
		for _, j := range dispatch(t, s, limits) {
			if j.TargetID == strict.ID {
				apply(t, s, ok(j)) // no links: strict is done
			} else {
				apply(t, s, ok(j, "http://example.test/loose/more")) // loose goes on
			}
		}
	}
	if got := loadTarget(t, s, strict.ID).State; got != store.TargetDone {
		t.Fatalf("strict target is %s, want done", got)
	}
	if ms, _ := hostPace(t, conn, host); ms != 1000 {
		t.Errorf("after the strict target finished: min_interval_ms = %d, want 1000", ms)
	}
	if _, err := s.RecrawlTarget(ctx, strict.ID); err != nil {
		t.Fatal(err)
	}
	if ms, _ := hostPace(t, conn, host); ms != 2000 {
		t.Errorf("after re-crawling the strict target: min_interval_ms = %d, want 2000", ms)
	}
	if diff := cmp.Diff(store.TargetActive, loadTarget(t, s, strict.ID).State); diff != "" {
		t.Errorf("re-crawled target state (-want +got):\n%s", diff)
	}
}

// Migration 00010 recomputes every host once: a host stalled by a rate from before rates were
// bounded is freed, and one paced by a target no longer active is released.
func TestMigrationRecomputesHostIntervals(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	conn := connect(t, dsn)
	ctx := t.Context()
	newTarget(t, s, "http://example.test/", func(nt *target.Spec) { nt.PerHostRPS = 2 })
	paused := newTarget(t, s, "http://other.test/", func(nt *target.Spec) { nt.PerHostRPS = 1 })
	if _, err := s.PauseTarget(ctx, paused.ID); err != nil {
		t.Fatal(err)
	}
	// As an old release left them: the wrapped interval, a paused target's interval kept.
	if _, err := conn.Exec(ctx, `
		UPDATE hosts SET min_interval_ms = 1410065408, next_fetch_at = now() + interval '16 days' WHERE host = 'example.test';
		UPDATE hosts SET min_interval_ms = 1000 WHERE host = 'other.test'`); err != nil {
		t.Fatal(err)
	}
	sql, err := migrations.FS.ReadFile("00010_host_intervals.sql")
	if err != nil {
		t.Fatal(err)
	}
	up, _, _ := strings.Cut(string(sql), "-- +goose Down")
	if _, err := conn.Exec(ctx, up); err != nil {
		t.Fatal(err)
	}
	if ms, ahead := hostPace(t, conn, "example.test"); ms != 500 || ahead > 500*time.Millisecond {
		t.Errorf("example.test: min_interval_ms %d, next fetch in %v; want 500, within 500ms", ms, ahead)
	}
	if ms, _ := hostPace(t, conn, "other.test"); ms != 0 {
		t.Errorf("other.test (its only target paused): min_interval_ms %d, want 0", ms)
	}
}

// Links a paused target's in-flight fetch brings in do not pace their new hosts until the target
// resumes.
func TestPausedTargetsNewHostsAreNotPaced(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	conn := connect(t, dsn)
	ctx := t.Context()
	tg := newTarget(t, s, "http://example.test/", func(nt *target.Spec) { nt.Scope = "domain"; nt.PerHostRPS = 1 })
	seed := dispatch(t, s, limits)[0]
	if _, err := s.PauseTarget(ctx, tg.ID); err != nil {
		t.Fatal(err)
	}
	if a := apply(t, s, ok(seed, "http://a.example.test/")); a.Discovered != 1 {
		t.Fatalf("applied %+v, want the link discovered", a)
	}
	if ms, _ := hostPace(t, conn, "a.example.test"); ms != 0 {
		t.Errorf("new host of a paused target: min_interval_ms %d, want 0", ms)
	}
	if _, err := s.ResumeTarget(ctx, tg.ID); err != nil {
		t.Fatal(err)
	}
	if ms, _ := hostPace(t, conn, "a.example.test"); ms != 1000 {
		t.Errorf("after resume: min_interval_ms %d, want 1000", ms)
	}
}
