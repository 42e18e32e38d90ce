package store_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

// walk pages a listing forward from its first page, then back from its last page with the
// previous-page cursors, and checks that both ways give the same pages, that the first page has
// no previous cursor and the last no next one, and that every row shows up once. page fetches
// one page for a cursor (after or before); it returns the rows' ids and both cursors.
func walk(t *testing.T, want []int64, limit int,
	page func(after, before string) (ids []int64, prev, next string)) {
	t.Helper()
	var forward [][]int64
	var ids []int64
	after := ""
	for range len(want) + 2 {
		rows, prev, next := page(after, "")
		if (prev == "") != (after == "") {
			t.Fatalf("page after %q: previous cursor %q; want one exactly when not on the first page", after, prev)
		}
		forward = append(forward, rows)
		ids = append(ids, rows...)
		if next == "" {
			break
		}
		after = next
	}
	if diff := gocmp.Diff(want, ids); diff != "" {
		t.Fatalf("rows paged forward (-want +got):\n%s", diff)
	}
	for i, p := range forward[:len(forward)-1] {
		if len(p) != limit {
			t.Fatalf("forward page %d has %d rows, want %d", i, len(p), limit)
		}
	}
	// Back from the last page: the same pages in reverse, ending on the first with no previous.
	_, before, _ := page(after, "")
	for i := len(forward) - 2; i >= 0; i-- {
		if before == "" {
			t.Fatalf("no previous cursor before page %d", i+1)
		}
		rows, prev, next := page("", before)
		if diff := gocmp.Diff(forward[i], rows); diff != "" {
			t.Fatalf("page %d read backwards (-want +got):\n%s", i, diff)
		}
		if next == "" {
			t.Fatalf("page %d read backwards has no next cursor", i)
		}
		if (i == 0) != (prev == "") {
			t.Fatalf("page %d read backwards: previous cursor %q", i, prev)
		}
		// Its next cursor leads back to the page after it.
		again, _, _ := page(next, "")
		if diff := gocmp.Diff(forward[i+1], again); diff != "" {
			t.Fatalf("next from page %d read backwards (-want +got):\n%s", i, diff)
		}
		before = prev
	}
}

// TestPagesPageBothWaysWithTies pages a target's pages forward and back in every sort: the
// status sort has long runs of equal keys, which the (key, url_id) cursors must neither skip
// nor repeat, in either direction.
func TestPagesPageBothWaysWithTies(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg, _ := site(t, s, "ties.test", 22, 200, 404, 200) // 23 pages: 7 404s, 16 200s
	site(t, s, "noise.test", 3)
	all, err := s.Pages(t.Context(), store.PageQuery{TargetID: tg.ID, Limit: 500, Count: true})
	if err != nil {
		t.Fatal(err)
	}
	if all.Total != (store.Total{N: 23}) {
		t.Fatalf("total = %+v, want 23 exactly", all.Total)
	}
	for _, sortBy := range []string{store.SortStatus, store.SortURL, store.SortSize, store.SortFetchedAt} {
		for _, desc := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s-desc=%t", sortBy, desc), func(t *testing.T) {
				q := store.PageQuery{TargetID: tg.ID, Sort: sortBy, Desc: desc, Limit: 4}
				full := q
				full.Limit = 500
				fl, err := s.Pages(t.Context(), full)
				if err != nil {
					t.Fatal(err)
				}
				walk(t, pageIDs(fl.Rows), 4, func(after, before string) ([]int64, string, string) {
					q.After, q.Before = after, before
					pl, err := s.Pages(t.Context(), q)
					if err != nil {
						t.Fatal(err)
					}
					return pageIDs(pl.Rows), pl.PrevCursor, pl.NextCursor
				})
			})
		}
	}
	// Filtered, the total counts what the filter keeps.
	if pl, err := s.Pages(t.Context(), store.PageQuery{TargetID: tg.ID, Status: "404", Count: true}); err != nil || pl.Total != (store.Total{N: 7}) {
		t.Errorf("404s: total %+v, %v; want 7", pl.Total, err)
	}
	if _, err := s.Pages(t.Context(), store.PageQuery{TargetID: tg.ID, After: all.NextCursor + "x", Before: "y"}); !errors.Is(err, store.ErrInvalidQuery) {
		t.Errorf("after and before together = %v, want ErrInvalidQuery", err)
	}
}

func pageIDs(rows []store.PageRow) []int64 {
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.URLID
	}
	return ids
}

// TestPreviousPageAtTheStartIsTheFirstPage: reading back from a cursor near the start (rows
// before it went, or the cursor is the second row) gives the first page in full, not a short one.
func TestPreviousPageAtTheStartIsTheFirstPage(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg, _ := site(t, s, "start.test", 9)
	first, err := s.Pages(t.Context(), store.PageQuery{TargetID: tg.ID, Limit: 4})
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.Pages(t.Context(), store.PageQuery{TargetID: tg.ID, Limit: 4, After: first.NextCursor})
	if err != nil {
		t.Fatal(err)
	}
	// A page that starts one row in: its previous page is the first four rows, not one.
	shifted, err := s.Pages(t.Context(), store.PageQuery{TargetID: tg.ID, Limit: 4, Before: second.PrevCursor})
	if err != nil {
		t.Fatal(err)
	}
	oneIn, err := s.Pages(t.Context(), store.PageQuery{TargetID: tg.ID, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	back, err := s.Pages(t.Context(), store.PageQuery{TargetID: tg.ID, Limit: 4, Before: oneIn.NextCursor})
	if err != nil {
		t.Fatal(err)
	}
	for name, pl := range map[string]store.PageList{"before page 2": shifted, "before row 2": back} {
		if diff := gocmp.Diff(pageIDs(first.Rows), pageIDs(pl.Rows)); diff != "" || pl.PrevCursor != "" || pl.NextCursor != first.NextCursor {
			t.Errorf("%s: prev %q next %q, rows (-first +got):\n%s", name, pl.PrevCursor, pl.NextCursor, diff)
		}
	}
}

// TestListTotalsEstimatePastTheCap: up to the cap a total is exact; past it, it is the
// planner's estimate, never below the cap.
func TestListTotalsEstimatePastTheCap(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	tg, _ := site(t, s, "many.test", 30, 200, 404)
	if _, err := conn(t, dsn).Exec(t.Context(), `ANALYZE pages`); err != nil {
		t.Fatal(err)
	}
	store.SetCountCap(s, 5)
	pl, err := s.Pages(t.Context(), store.PageQuery{TargetID: tg.ID, Limit: 2, Count: true})
	if err != nil {
		t.Fatal(err)
	}
	if !pl.Total.Estimated || pl.Total.N < 6 || pl.Total.N > 1000 {
		t.Errorf("total of 31 pages past a cap of 5 = %+v, want an estimate of at least 6", pl.Total)
	}
	if len(pl.Rows) != 2 || pl.NextCursor == "" {
		t.Errorf("counting changed the page: %d rows, next %q", len(pl.Rows), pl.NextCursor)
	}
	if pl, err := s.Pages(t.Context(), store.PageQuery{TargetID: tg.ID, Status: "5xx", Count: true}); err != nil || pl.Total != (store.Total{}) {
		t.Errorf("no 5xx: total %+v, %v; want 0 exactly", pl.Total, err)
	}
	tl, err := s.TargetList(t.Context(), store.TargetQuery{Count: true})
	if err != nil || tl.Total != (store.Total{N: 1}) {
		t.Errorf("targets: total %+v, %v; want 1 exactly", tl.Total, err)
	}
}

// TestTargetAndURLListsPageBothWays pages the targets list and the retry and failure lists
// both ways; the retry list's sort key (next attempt) is shared by every row.
func TestTargetAndURLListsPageBothWays(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	// Sixteen URLs of one target: ten will wait for a retry at the same moment, seven failed.
	tg, ids := site(t, s, "retry.test", 16)
	targets := []int64{tg.ID}
	for i := range 7 {
		nt := newTarget(t, s, fmt.Sprintf("http://t%d.test/", i), nil)
		targets = append([]int64{nt.ID}, targets...) // newest first
	}
	tl, err := s.TargetList(t.Context(), store.TargetQuery{Count: true})
	if err != nil || tl.Total != (store.Total{N: 8}) {
		t.Fatalf("target total = %+v, %v; want 8", tl.Total, err)
	}
	walk(t, targets, 3, func(after, before string) ([]int64, string, string) {
		l, err := s.TargetList(t.Context(), store.TargetQuery{Limit: 3, After: after, Before: before})
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]int64, len(l.Rows))
		for i, r := range l.Rows {
			ids[i] = r.ID
		}
		return ids, l.PrevCursor, l.NextCursor
	})

	c := conn(t, dsn)
	at := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	var retrying, failed []int64
	for i := range 10 {
		retrying = append(retrying, ids[fmt.Sprintf("http://retry.test/p%03d", i)])
	}
	for i := 10; i < 16; i++ {
		failed = append(failed, ids[fmt.Sprintf("http://retry.test/p%03d", i)])
	}
	failed = append(failed, ids["http://retry.test/"])
	slices.Sort(retrying)
	if _, err := c.Exec(t.Context(), `UPDATE urls SET state = 'queued', attempts = 1, next_attempt_at = $2, error_class = 'timeout'
		WHERE id = ANY($1)`, retrying, at); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(t.Context(), `UPDATE urls SET state = 'failed', attempts = 1, error_class = 'timeout' WHERE id = ANY($1)`, failed); err != nil {
		t.Fatal(err)
	}
	lists := map[string]struct {
		list func(store.URLFilter) (store.URLList, error)
		want []int64
	}{
		"retrying": {func(f store.URLFilter) (store.URLList, error) { return s.Retrying(t.Context(), f) }, retrying}, // ties: by id
		"failed":   {func(f store.URLFilter) (store.URLList, error) { return s.Failed(t.Context(), f) }, descending(failed)},
	}
	for name, l := range lists {
		t.Run(name, func(t *testing.T) {
			f := store.URLFilter{TargetID: tg.ID, Limit: 3, Count: true}
			first, err := l.list(f)
			if err != nil || first.Total != (store.Total{N: int64(len(l.want))}) {
				t.Fatalf("total = %+v, %v; want %d", first.Total, err, len(l.want))
			}
			walk(t, l.want, 3, func(after, before string) ([]int64, string, string) {
				f.After, f.Before, f.Count = after, before, false
				ul, err := l.list(f)
				if err != nil {
					t.Fatal(err)
				}
				ids := make([]int64, len(ul.Rows))
				for i, r := range ul.Rows {
					ids[i] = r.URLID
				}
				return ids, ul.PrevCursor, ul.NextCursor
			})
		})
	}
}

func descending(ids []int64) []int64 {
	out := slices.Sorted(slices.Values(ids))
	slices.Reverse(out)
	return out
}

// TestDeadLettersPageBackAndCount: BeforeID lists the last rows before it, still in id order,
// and CountDeadLetters counts what a filter matches.
func TestDeadLettersPageBackAndCount(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tid := int64(3)
	var ids []int64
	for i := range 7 {
		d := store.DeadLetter{Fingerprint: fmt.Sprint("fp", i), Reason: "rejected", Host: "a.test"}
		if i%3 == 0 {
			d.TargetID = &tid
		}
		id, _, err := s.InsertDeadLetter(t.Context(), d)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	got, err := s.DeadLetters(t.Context(), store.DeadLetterFilter{Limit: 3, BeforeID: ids[6]})
	if err != nil {
		t.Fatal(err)
	}
	var gotIDs []int64
	for _, d := range got {
		gotIDs = append(gotIDs, d.ID)
	}
	if diff := gocmp.Diff(ids[3:6], gotIDs); diff != "" {
		t.Errorf("three before the last (-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		f    store.DeadLetterFilter
		want int64
	}{
		{store.DeadLetterFilter{}, 7},
		{store.DeadLetterFilter{TargetID: tid}, 3},
		{store.DeadLetterFilter{Host: "b.test"}, 0},
		{store.DeadLetterFilter{TargetID: tid, AfterID: ids[5], Limit: 1}, 3}, // paging is ignored
	} {
		if n, err := s.CountDeadLetters(t.Context(), tt.f); err != nil || n != (store.Total{N: tt.want}) {
			t.Errorf("CountDeadLetters(%+v) = %+v, %v; want %d", tt.f, n, err, tt.want)
		}
	}
}

// TestTargetErrorsSplitFailedFromStored: a target's error groups count apart the URLs given
// up on, those waiting for a retry, and the pages stored with an HTTP error status.
func TestTargetErrorsSplitFailedFromStored(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg := newTarget(t, s, "http://e.test/", func(nt *target.Spec) { nt.MaxAttempts = 2 })
	apply(t, s, ok(dispatch(t, s, limits)[0], "http://e.test/404", "http://e.test/503", "http://e.test/down"))
	for _, j := range dispatch(t, s, limits) {
		r := ok(j)
		switch j.URL {
		case "http://e.test/404":
			r.Status = 404
		case "http://e.test/503":
			r.Status = 503
		default:
			r.Status, r.Error, r.ErrorClass, r.Permanent = 0, "no such host", "dns", true
		}
		apply(t, s, r)
	}
	groups, err := s.TargetErrors(t.Context(), tg.ID, 20)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range groups {
		got = append(got, fmt.Sprintf("%s n=%d failed=%d retrying=%d stored=%d", g.Class, g.Count, g.Failed, g.Retrying, g.Stored))
	}
	want := []string{"dns n=1 failed=1 retrying=0 stored=0", "http_404 n=1 failed=0 retrying=0 stored=1",
		"http_503 n=1 failed=0 retrying=1 stored=0"}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("error groups (-want +got):\n%s", diff)
	}
	if got := loadTarget(t, s, tg.ID); got.URLsFailed != 1 {
		t.Errorf("failed = %d, want 1: the 404 is stored, not failed", got.URLsFailed)
	}
}

// TestPageDetailCountsTheSuccessfulAttempt: a URL that failed once and then was fetched has
// made two attempts.
func TestPageDetailCountsTheSuccessfulAttempt(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg := newTarget(t, s, "http://a.test/", nil)
	j := dispatch(t, s, limits)[0]
	r := ok(j)
	r.Status = 503
	apply(t, s, r)
	var again []store.Job
	testenv.Eventually(t, 5*time.Second, 5*time.Millisecond, "the retry to be due", func() bool {
		again = dispatch(t, s, limits)
		return len(again) == 1
	})
	apply(t, s, ok(again[0]))
	d, err := s.PageDetail(t.Context(), seedID(t, s, tg.ID))
	if err != nil {
		t.Fatal(err)
	}
	if d.State != store.URLDone || d.Attempts != 2 {
		t.Errorf("after a 503 and a 200: state %s, attempts %d; want done, 2", d.State, d.Attempts)
	}
}
