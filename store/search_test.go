package store_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/test/testenv"
)

func TestSearch(t *testing.T) {
	t.Parallel()
	// 0: the default scan covers these small targets whole; 10: common words are found by the
	// scan, the others through the GIN index; 2: nearly everything goes through the GIN index.
	for _, probe := range []int{0, 10, 2} {
		t.Run(fmt.Sprintf("probe=%d", probe), func(t *testing.T) {
			t.Parallel()
			s, _ := testenv.Store(t)
			if probe > 0 {
				store.SetSearchProbe(s, probe)
			}
			testSearch(t, s)
		})
	}
}

func testSearch(t *testing.T, s *store.Store) {
	tg, ids := site(t, s, "example.test", 30)
	other, _ := site(t, s, "other.test", 3)

	// Hostile text: markup and the private-use markers must come back as plain text.
	if rc, err := s.RecrawlTarget(t.Context(), other.ID); err != nil || rc.State != store.TargetActive {
		t.Fatalf("RecrawlTarget = %+v, %v", rc, err)
	}
	crawlOut(t, s, func(j store.Job) store.Result {
		r := ok(j)
		r.Text = "<script>alert(1)</script> \uE000forged\uE001 hostile apples"
		r.Title = "<b>bold</b>"
		return r
	})
	indexAll(t, s)

	var res store.SearchResults
	var err error
	var got []int64
	q := store.SearchQuery{Query: "pears", TargetID: tg.ID, Limit: 4}
	for range 20 {
		res, err = s.Search(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range res.Hits {
			got = append(got, h.URLID)
			var hits []string
			for _, p := range h.Snippet {
				if p.Hit {
					hits = append(hits, p.Text)
				}
			}
			if diff := gocmp.Diff([]string{"pears"}, hits); diff != "" {
				t.Errorf("highlighted words of %s (-want +got):\n%s", h.URL, diff)
			}
		}
		if res.NextCursor == "" {
			break
		}
		q.After = res.NextCursor
	}
	var want []int64
	for i := 1; i < 30; i += 3 {
		want = append(want, ids[fmt.Sprintf("http://example.test/p%03d", i)])
	}
	slices.Sort(want)
	slices.Reverse(want) // newest first
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("hits (-want +got):\n%s", diff)
	}

	// A word on every page, paginated: every page once, newest first.
	var all []int64
	q = store.SearchQuery{Query: "number", TargetID: tg.ID, Limit: 4}
	for range 20 {
		res, err = s.Search(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range res.Hits {
			all = append(all, h.URLID)
		}
		if res.NextCursor == "" {
			break
		}
		q.After = res.NextCursor
	}
	var wantAll []int64
	for u, id := range ids {
		if u != "http://example.test/" {
			wantAll = append(wantAll, id)
		}
	}
	slices.Sort(wantAll)
	slices.Reverse(wantAll)
	if diff := gocmp.Diff(wantAll, all); diff != "" {
		t.Errorf("hits for a word on every page (-want +got):\n%s", diff)
	}

	// websearch syntax: a phrase and an exclusion.
	res, err = s.Search(t.Context(), store.SearchQuery{Query: `"number 4 about" -apples`})
	if err != nil || len(res.Hits) != 1 || res.Hits[0].URL != "http://example.test/p004" {
		t.Errorf("phrase search = %+v, %v; want p004", res.Hits, err)
	}

	res, err = s.Search(t.Context(), store.SearchQuery{Query: "hostile", TargetID: other.ID})
	if err != nil || len(res.Hits) != 4 {
		t.Fatalf("hostile search = %d hits, %v; want 4", len(res.Hits), err)
	}
	for _, h := range res.Hits {
		var text strings.Builder
		for _, p := range h.Snippet {
			if p.Hit && p.Text != "hostile" {
				t.Errorf("forged highlight %q", p.Text)
			}
			text.WriteString(p.Text)
		}
		// ts_headline leaves tags out; what remains is plain text, never a marker.
		if !strings.Contains(text.String(), "forged hostile apples") || strings.ContainsAny(text.String(), "\uE000\uE001") {
			t.Errorf("snippet %q: want the words as plain text, without markers", text.String())
		}
		if h.Title != "<b>bold</b>" {
			t.Errorf("title = %q", h.Title)
		}
	}
	for _, bad := range []string{"", "   ", strings.Repeat("x", 501)} {
		if _, err := s.Search(t.Context(), store.SearchQuery{Query: bad}); !errors.Is(err, store.ErrInvalidQuery) {
			t.Errorf("Search(%q) = %v, want ErrInvalidQuery", bad, err)
		}
	}
	// Syntax websearch_to_tsquery cannot choke on.
	if _, err := s.Search(t.Context(), store.SearchQuery{Query: `"unbalanced & | ! (`}); err != nil {
		t.Errorf("odd query: %v", err)
	}
}

// TestSearchLeavesOutDeletingTargets: the pages of a target being deleted are still in the
// search index until their purge batch goes, but search no longer shows them, while the cursor
// still pages through what is left.
func TestSearchLeavesOutDeletingTargets(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	gone, _ := site(t, s, "gone.test", 6)
	kept, _ := site(t, s, "kept.test", 6)
	if _, err := s.DeleteTarget(t.Context(), gone.ID); err != nil {
		t.Fatal(err)
	}
	var targets []int64
	q := store.SearchQuery{Query: "page", Limit: 2}
	for range 20 {
		res, err := s.Search(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range res.Hits {
			targets = append(targets, h.TargetID)
		}
		if res.NextCursor == "" {
			break
		}
		q.After = res.NextCursor
	}
	want := []int64{kept.ID, kept.ID, kept.ID, kept.ID, kept.ID, kept.ID}
	if diff := gocmp.Diff(want, targets); diff != "" {
		t.Errorf("targets of the hits (-want +got):\n%s", diff)
	}
}
