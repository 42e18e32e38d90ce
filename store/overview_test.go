package store_test

import (
	"errors"
	"fmt"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

func TestOverviewListsAndExport(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	a, aIDs := site(t, s, "a.test", 9, 200, 404, 500) // 500s fail at once (max attempts 1)
	b := newTarget(t, s, "http://b.test/", func(nt *target.Spec) { nt.MaxAttempts = 3 })
	seed := dispatch(t, s, limits)[0]
	apply(t, s, ok(seed, "http://b.test/1", "http://b.test/2", "http://b.test/3"))
	js := dispatch(t, s, limits)
	r := ok(js[0])
	r.Error, r.ErrorClass = "dial tcp: connection refused", "refused"
	apply(t, s, r) // one retrying; two dispatched
	if _, err := s.PauseTarget(t.Context(), b.ID); err != nil {
		t.Fatal(err)
	}

	o, err := s.Overview(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := store.Overview{Queued: 0, Dispatched: 2, Retrying: 1, Failed: 3, Done: 7 + 1, Discovered: 10 + 4,
		SearchBacklog: 1, // b's seed page; site() indexed a's
		Targets:       map[string]int64{"done": 1, "paused": 1}}
	if diff := gocmp.Diff(want, o, gocmpIgnoreActive); diff != "" {
		t.Errorf("overview (-want +got):\n%s", diff)
	}
	if len(o.Active) != 1 || o.Active[0].ID != b.ID || o.Active[0].Dispatched != 2 || o.Active[0].Retrying != 1 {
		t.Errorf("active = %+v", o.Active)
	}

	list, err := s.TargetList(t.Context(), store.TargetQuery{Limit: 1})
	if err != nil || len(list.Rows) != 1 || list.Rows[0].ID != b.ID || list.NextCursor == "" {
		t.Fatalf("target list page 1 = %+v, %v", list, err)
	}
	list, err = s.TargetList(t.Context(), store.TargetQuery{Limit: 1, After: list.NextCursor})
	if err != nil || len(list.Rows) != 1 || list.Rows[0].ID != a.ID || list.NextCursor != "" {
		t.Fatalf("target list page 2 = %+v, %v", list, err)
	}
	if list, err := s.TargetList(t.Context(), store.TargetQuery{State: store.TargetDone}); err != nil || len(list.Rows) != 1 || list.Rows[0].ID != a.ID {
		t.Fatalf("done targets = %+v, %v", list, err)
	}
	if _, err := s.TargetList(t.Context(), store.TargetQuery{State: "running"}); !errors.Is(err, store.ErrInvalidQuery) {
		t.Fatalf("unknown state = %v, want ErrInvalidQuery", err)
	}

	failed, err := s.Failed(t.Context(), store.URLFilter{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	var failedIDs []int64
	for {
		for _, u := range failed.Rows {
			failedIDs = append(failedIDs, u.URLID)
			if u.LastStatus != 500 || u.ErrorClass != "http_500" {
				t.Errorf("failed row %+v", u)
			}
		}
		if failed.NextCursor == "" {
			break
		}
		if failed, err = s.Failed(t.Context(), store.URLFilter{Limit: 2, After: failed.NextCursor}); err != nil {
			t.Fatal(err)
		}
	}
	wantFailed := []int64{aIDs["http://a.test/p008"], aIDs["http://a.test/p005"], aIDs["http://a.test/p002"]}
	if diff := gocmp.Diff(wantFailed, failedIDs); diff != "" {
		t.Errorf("failed (-want +got):\n%s", diff)
	}
	if f, err := s.Failed(t.Context(), store.URLFilter{TargetID: b.ID}); err != nil || len(f.Rows) != 0 {
		t.Errorf("failed of b = %+v, %v; want none", f, err)
	}
	if f, err := s.Failed(t.Context(), store.URLFilter{Host: "A.TEST", ErrorClass: "http_500"}); err != nil || len(f.Rows) != 3 {
		t.Errorf("failed by host and class = %d rows, %v; want 3", len(f.Rows), err)
	}
	if rt, err := s.Retrying(t.Context(), store.URLFilter{ErrorClass: "refused"}); err != nil || len(rt.Rows) != 1 || rt.Rows[0].LastError == "" {
		t.Errorf("retrying by class = %+v, %v", rt, err)
	}
	groups, err := s.TargetErrors(t.Context(), a.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	var classes []string
	for _, g := range groups {
		classes = append(classes, fmt.Sprintf("%s=%d", g.Class, g.Count))
	}
	if diff := gocmp.Diff([]string{"http_404=3", "http_500=3"}, classes); diff != "" {
		t.Errorf("error groups (-want +got):\n%s", diff)
	}
	if _, err := s.TargetErrors(t.Context(), 1<<40, 10); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("errors of a missing target = %v, want ErrNotFound", err)
	}

	// Export streams every stored page of a, in url_id order, including the 4xx/5xx pages.
	var exported []string
	err = s.ExportPages(t.Context(), a.ID, true, func(r store.ExportRow) error {
		exported = append(exported, r.URL)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(exported) != 10 || exported[0] != "http://a.test/" {
		t.Errorf("exported %v", exported)
	}
	stop := errors.New("stop")
	n := 0
	if err := s.ExportPages(t.Context(), a.ID, true, func(store.ExportRow) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("export stopped by fn = %v after %d rows, want stop after 1", err, n)
	}
	if err := s.ExportPages(t.Context(), 1<<40, true, func(store.ExportRow) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("export of a missing target = %v, want ErrNotFound", err)
	}
	if _, err := s.PageDetail(t.Context(), 1<<40); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("detail of a missing URL = %v, want ErrNotFound", err)
	}
}

var gocmpIgnoreActive = gocmp.FilterPath(func(p gocmp.Path) bool { return p.String() == "Active" }, gocmp.Ignore())
