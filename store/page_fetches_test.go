package store_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

func TestFetchHistoryLinksAndRates(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", func(nt *target.Spec) { nt.MaxDepth = 1 })
	seed := dispatch(t, s, limits)[0]
	r := ok(seed, "http://example.test/a", "http://example.test/b#frag", "http://other.test/x")
	r.ContentHash, r.ETag, r.Size, r.DurationMS = "h1", `"v1"`, 1234, 17
	apply(t, s, r)

	jobs := dispatch(t, s, limits)
	if len(jobs) != 2 {
		t.Fatalf("dispatch = %d jobs, want 2", len(jobs))
	}
	byURL := map[string]store.Job{}
	for _, j := range jobs {
		byURL[j.URL] = j
	}
	a, b := byURL["http://example.test/a"], byURL["http://example.test/b"]
	// a is at max depth: its links make no new URLs, but the one to b and the seed are edges.
	ra := ok(a, "http://example.test/b", "http://example.test/", "http://example.test/new")
	ra.ContentHash = "ha"
	rb := ok(b)
	rb.Status = 503
	apply(t, s, ra, rb)

	seedDetail, err := s.PageDetail(t.Context(), seed.URLID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff([]string{"http://example.test/a", "http://example.test/b"}, linkURLs(seedDetail.Outlinks)); diff != "" {
		t.Errorf("seed outlinks (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff([]string{"http://example.test/a"}, linkURLs(seedDetail.Inlinks)); diff != "" {
		t.Errorf("seed inlinks (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff([]string{"http://example.test/a", "http://example.test/b#frag", "http://other.test/x"}, seedDetail.Links); diff != "" {
		t.Errorf("seed raw links (-want +got):\n%s", diff)
	}
	if seedDetail.Page == nil || seedDetail.Page.ETag != `"v1"` || seedDetail.Page.Size != 1234 || seedDetail.Page.DurationMS != 17 {
		t.Errorf("seed page = %+v", seedDetail.Page)
	}
	bDetail, err := s.PageDetail(t.Context(), b.URLID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff([]string{"http://example.test/", "http://example.test/a"}, linkURLs(bDetail.Inlinks)); diff != "" {
		t.Errorf("b inlinks (-want +got):\n%s", diff)
	}
	if bDetail.State != store.URLQueued || bDetail.Attempts != 1 || bDetail.ErrorClass != "http_503" {
		t.Errorf("b = state %s attempts %d class %q, want queued, 1, http_503", bDetail.State, bDetail.Attempts, bDetail.ErrorClass)
	}
	if len(bDetail.History) != 1 || bDetail.History[0].Status != 503 || bDetail.History[0].Changed || bDetail.History[0].ErrorClass != "http_503" {
		t.Errorf("b history = %+v", bDetail.History)
	}

	// The throughput chart has every fetch, and the 503 as an error.
	pts, err := s.Throughput(t.Context(), tg.ID, time.Minute, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 6 {
		t.Fatalf("throughput buckets = %d, want 6", len(pts))
	}
	var pages, errs int64
	for i, p := range pts {
		pages += p.Pages
		errs += p.Errors
		if i > 0 && p.At.Sub(pts[i-1].At) != 10*time.Second {
			t.Errorf("bucket %d at %v, previous %v: want 10s apart", i, p.At, pts[i-1].At)
		}
	}
	if pages != 3 || errs != 1 {
		t.Errorf("throughput total = %d pages %d errors, want 3 and 1", pages, errs)
	}
	if other, err := s.Throughput(t.Context(), tg.ID+1, time.Minute, 10*time.Second); err != nil || len(other) != 6 || other[5].Pages != 0 {
		t.Errorf("throughput of another target = %+v, %v; want 6 empty buckets", other, err)
	}
	if _, err := s.Throughput(t.Context(), 0, time.Minute, 0); !errors.Is(err, store.ErrInvalidQuery) {
		t.Errorf("throughput with zero bucket = %v, want ErrInvalidQuery", err)
	}

	sum, err := s.TargetSummary(t.Context(), tg.ID)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Retrying != 1 || sum.Dispatched != 0 || sum.Queued() != 1 || sum.URLsDone != 2 {
		t.Errorf("summary = %+v, want 1 retrying, 2 done", sum)
	}

	hosts, err := s.TargetHosts(t.Context(), tg.ID, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts.Rows) != 1 || hosts.Rows[0].Host != "example.test" || hosts.Rows[0].Fetches != 3 || hosts.Rows[0].Errors != 1 {
		t.Errorf("hosts = %+v, want example.test with 3 fetches, 1 error", hosts.Rows)
	}

	groups, err := s.TargetErrors(t.Context(), tg.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || groups[0].Class != "http_503" || groups[0].Count != 1 || groups[0].SampleURLID != b.URLID || groups[0].SampleStatus != 503 {
		t.Errorf("error groups = %+v", groups)
	}

	retry, err := s.Retrying(t.Context(), store.URLFilter{TargetID: tg.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(retry.Rows) != 1 || retry.Rows[0].URLID != b.URLID || retry.Rows[0].Attempts != 1 || retry.Rows[0].LastStatus != 503 {
		t.Errorf("retrying = %+v", retry.Rows)
	}
}

func TestFetchHistoryChangedAndNotModified(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", nil)
	fetch := func(status int, hash, text string, links ...string) {
		t.Helper()
		jobs := dispatch(t, s, limits)
		if len(jobs) != 1 {
			t.Fatalf("dispatch = %d jobs, want 1", len(jobs))
		}
		r := ok(jobs[0], links...)
		r.Status, r.ContentHash, r.Text = status, hash, text
		if status == 304 {
			r.Title = ""
		}
		apply(t, s, r)
	}
	requeue := func() {
		t.Helper()
		if _, err := s.RecrawlTarget(t.Context(), tg.ID); err != nil {
			t.Fatal(err)
		}
	}
	fetch(200, "h1", "first words", "http://example.test/")
	// One fetch, and it succeeded: one attempt (the retry counter, urls.attempts, stays 0).
	if d, err := s.PageDetail(t.Context(), seedID(t, s, tg.ID)); err != nil || d.Attempts != 1 {
		t.Fatalf("page detail after one fetch: attempts %d, %v; want 1", d.Attempts, err)
	}
	requeue()
	fetch(200, "h1", "first words") // same content
	requeue()
	fetch(304, "", "")
	requeue()
	fetch(200, "h2", "second words")

	hist, err := s.FetchHistory(t.Context(), seedID(t, s, tg.ID), 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range hist {
		got = append(got, fmt.Sprintf("%d %s changed=%t new=%t", f.Status, f.ContentHash, f.Changed, f.New))
	}
	want := []string{ // newest first; only the first content is new
		"200 h2 changed=true new=false", "304  changed=false new=false",
		"200 h1 changed=false new=false", "200 h1 changed=true new=true"}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	if _, err := s.FetchHistory(t.Context(), 1<<40, 10); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("history of a missing URL = %v, want ErrNotFound", err)
	}
}
