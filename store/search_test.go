package store_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
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

// doc is a page for the ranking tests: its path, title and text.
type doc struct{ path, title, text string }

// docSite crawls a target in language lang (target.Spec.SearchLanguage) whose seed links to
// docs, indexes it and returns the url_id of each doc by path. Paths in alphabetical order get
// ascending url_ids.
func docSite(t *testing.T, s *store.Store, host, lang string, docs ...doc) (store.Target, map[string]int64) {
	t.Helper()
	tg := newTarget(t, s, "http://"+host+"/", func(nt *target.Spec) { nt.SearchLanguage = lang })
	seed := dispatch(t, s, limits)
	if len(seed) != 1 {
		t.Fatalf("seed dispatch = %d jobs", len(seed))
	}
	byURL := map[string]doc{}
	var links []string
	for _, d := range docs {
		u := "http://" + host + "/" + d.path
		byURL[u] = d
		links = append(links, u)
	}
	seedResult := ok(seed[0], links...)
	seedResult.Title, seedResult.Text = "", "start"
	apply(t, s, seedResult)
	ids := map[string]int64{}
	crawlOut(t, s, func(j store.Job) store.Result {
		d, found := byURL[j.URL]
		if !found {
			t.Fatalf("unexpected job %s", j.URL)
		}
		ids[d.path] = j.URLID
		r := ok(j)
		r.Title, r.Text, r.ContentHash = d.title, d.text, d.path
		return r
	})
	indexAll(t, s)
	return tg, ids
}

// searchAll pages through every hit of q, limit at a time, and returns them in order.
func searchAll(t *testing.T, s *store.Store, q store.SearchQuery) ([]store.SearchHit, store.SearchResults) {
	t.Helper()
	var all []store.SearchHit
	var first store.SearchResults
	for i := range 100 {
		res, err := s.Search(t.Context(), q)
		if err != nil {
			t.Fatalf("Search(%+v): %v", q, err)
		}
		if i == 0 {
			first = res
		}
		all = append(all, res.Hits...)
		if res.NextCursor == "" {
			return all, first
		}
		q.After = res.NextCursor
	}
	t.Fatalf("Search(%+v): more than 100 pages", q)
	return nil, first
}

func hitIDs(hs []store.SearchHit) []int64 {
	ids := make([]int64, len(hs))
	for i, h := range hs {
		ids[i] = h.URLID
	}
	return ids
}

// TestSearchRanksTitleAboveBody: hits come best first, not newest first (the best is the
// oldest here). A page with the words in its title outranks one with them only in its text, and
// a page with them more often in its text outranks one with them once.
func TestSearchRanksTitleAboveBody(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	_, ids := docSite(t, s, "rank.test", "simple",
		doc{"a-title", "Event loop", "How callbacks are scheduled and run in order."},
		doc{"b-twice", "Scheduling", "The event loop runs callbacks; each event loop owns a queue."},
		doc{"c-once", "Scheduling", "The event loop runs callbacks in order of their arrival."},
		doc{"d-none", "Other", "Nothing about that here at all, only other words."},
	)
	for _, probe := range []int{0, 1} { // the scan, and the GIN index
		if probe > 0 {
			store.SetSearchProbe(s, probe)
		}
		hits, res := searchAll(t, s, store.SearchQuery{Query: "event loop", Limit: 1})
		want := []int64{ids["a-title"], ids["b-twice"], ids["c-once"]}
		if diff := gocmp.Diff(want, hitIDs(hits)); diff != "" {
			t.Errorf("probe %d: hits (-want +got):\n%s", probe, diff)
		}
		if res.Total != 3 || res.TotalCapped {
			t.Errorf("probe %d: total = %d (capped %v), want 3", probe, res.Total, res.TotalCapped)
		}
		for i := 1; i < len(hits); i++ {
			if hits[i].Rank >= hits[i-1].Rank {
				t.Errorf("probe %d: rank %g of hit %d is not below %g", probe, hits[i].Rank, i, hits[i-1].Rank)
			}
		}
	}
}

// TestSearchPagesAcrossTies: hits of equal rank are ordered by url_id, newest first, and the
// cursor (rank and url_id) pages through them without skipping or repeating one, whatever the
// page size, also where a page boundary falls inside a group of ties.
func TestSearchPagesAcrossTies(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	var docs []doc
	for i := range 9 {
		d := doc{fmt.Sprintf("p%d", i), "Plain page", "a page about plums and more"}
		if i%3 == 0 {
			d.title = "Plums"
		}
		docs = append(docs, d)
	}
	_, ids := docSite(t, s, "ties.test", "simple", docs...)
	var want []int64
	for _, group := range [][]int{{6, 3, 0}, {8, 7, 5, 4, 2, 1}} {
		for _, i := range group {
			want = append(want, ids[fmt.Sprintf("p%d", i)])
		}
	}
	for _, limit := range []int{1, 2, 4, 20} {
		hits, res := searchAll(t, s, store.SearchQuery{Query: "plums", Limit: limit})
		if diff := gocmp.Diff(want, hitIDs(hits)); diff != "" {
			t.Errorf("limit %d: hits (-want +got):\n%s", limit, diff)
		}
		if res.Total != 9 {
			t.Errorf("limit %d: total = %d, want 9", limit, res.Total)
		}
		if hits[0].Rank != hits[2].Rank || hits[3].Rank != hits[8].Rank || hits[2].Rank <= hits[3].Rank {
			t.Errorf("limit %d: ranks %v: want two groups of ties", limit, ranks(hits))
		}
	}
	if _, err := s.Search(t.Context(), store.SearchQuery{Query: "plums", After: "not a cursor"}); !errors.Is(err, store.ErrInvalidQuery) {
		t.Errorf("bad cursor: %v, want ErrInvalidQuery", err)
	}
}

func ranks(hs []store.SearchHit) []float32 {
	rs := make([]float32, len(hs))
	for i, h := range hs {
		rs[i] = h.Rank
	}
	return rs
}

// TestSearchCountsUpToTheCap: Total is the exact number of matches up to the cap; past it
// Total is the cap, TotalCapped is set, and the hits are the best of the cap's newest matches,
// each once.
func TestSearchCountsUpToTheCap(t *testing.T) {
	t.Parallel()
	for _, probe := range []int{0, 3} {
		t.Run(fmt.Sprintf("probe=%d", probe), func(t *testing.T) {
			t.Parallel()
			s, _ := testenv.Store(t)
			if probe > 0 {
				store.SetSearchProbe(s, probe)
			}
			_, ids := site(t, s, "count.test", 30) // "number" is on 30 pages, "pears" on 10
			store.SetSearchCap(s, 12)
			hits, res := searchAll(t, s, store.SearchQuery{Query: "number", Limit: 5})
			if res.Total != 12 || !res.TotalCapped {
				t.Errorf("total = %d (capped %v), want 12 capped", res.Total, res.TotalCapped)
			}
			var newest []int64
			for u, id := range ids {
				if u != "http://count.test/" {
					newest = append(newest, id)
				}
			}
			slices.Sort(newest)
			slices.Reverse(newest)
			if diff := gocmp.Diff(newest[:12], hitIDs(hits)); diff != "" {
				t.Errorf("hits past the cap (-want +got):\n%s", diff)
			}
			_, res = searchAll(t, s, store.SearchQuery{Query: "pears", Limit: 5})
			if res.Total != 10 || res.TotalCapped {
				t.Errorf("pears: total = %d (capped %v), want 10", res.Total, res.TotalCapped)
			}
			res, err := s.Search(t.Context(), store.SearchQuery{Query: "nosuchword"})
			if err != nil || res.Total != 0 || len(res.Hits) != 0 || res.Hits == nil {
				t.Errorf("no match = %+v, %v; want no hits, total 0", res, err)
			}
		})
	}
}

// TestSearchLanguagePerTarget: a target's pages are indexed and searched in its language.
// "loops" finds "loop" in an english target and not in a simple one; one search covers both;
// words english drops as stop words are not found there; snippets mark the stemmed word.
func TestSearchLanguagePerTarget(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	simple, sIDs := docSite(t, s, "simple.test", "", doc{"a", "Nested loop", "A loop inside another loop."})
	english, eIDs := docSite(t, s, "english.test", "english", doc{"a", "Nested loop", "A loop inside another loop."})
	if simple.SearchLanguage != "simple" || english.SearchLanguage != "english" {
		t.Fatalf("languages = %q, %q; want simple (the default) and english", simple.SearchLanguage, english.SearchLanguage)
	}
	for _, tc := range []struct {
		q      string
		target int64
		want   []int64
	}{
		{"loops", 0, []int64{eIDs["a"]}},
		{"loops", english.ID, []int64{eIDs["a"]}},
		{"loops", simple.ID, nil},
		{"loop", 0, []int64{eIDs["a"], sIDs["a"]}},
		{`"nested loops" -inside`, 0, nil},
		{`"nested loops"`, 0, []int64{eIDs["a"]}},
		{"inside", english.ID, []int64{eIDs["a"]}},
		{"inside", simple.ID, []int64{sIDs["a"]}},
	} {
		hits, _ := searchAll(t, s, store.SearchQuery{Query: tc.q, TargetID: tc.target})
		got := hitIDs(hits)
		slices.Sort(got)
		slices.Sort(tc.want)
		if diff := gocmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Search(%q, target %d) (-want +got):\n%s", tc.q, tc.target, diff)
		}
	}
	// The snippet of an english hit marks the words of the stem.
	res, err := s.Search(t.Context(), store.SearchQuery{Query: "loops", TargetID: english.ID})
	if err != nil || len(res.Hits) != 1 {
		t.Fatalf("loops = %+v, %v", res, err)
	}
	var marked []string
	for _, p := range res.Hits[0].Snippet {
		if p.Hit {
			marked = append(marked, p.Text)
		}
	}
	if diff := gocmp.Diff([]string{"loop", "loop"}, marked); diff != "" {
		t.Errorf("marked words (-want +got):\n%s", diff)
	}
	// english drops "the" as a stop word: a query of stop words alone finds nothing there.
	if hits, _ := searchAll(t, s, store.SearchQuery{Query: "the", TargetID: english.ID}); len(hits) != 0 {
		t.Errorf("stop word: %d hits", len(hits))
	}
}

// TestCreateTargetChecksSearchLanguage: a language PostgreSQL has no built-in configuration
// for is refused as target.ErrSearchLanguage, naming the field; "" is simple.
func TestCreateTargetChecksSearchLanguage(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	for _, lang := range []string{"klingon", "english_stem", "default"} {
		_, err := s.CreateTarget(t.Context(), target.Spec{Name: "x", SeedURL: "http://" + lang + ".test/", Scope: "host",
			MaxDepth: 1, MaxPages: 10, MaxAttempts: 1, SearchLanguage: lang})
		var fe *target.FieldError
		if !errors.Is(err, target.ErrSearchLanguage) || !errors.As(err, &fe) || fe.Field != "search_language" {
			t.Errorf("CreateTarget(%q) = %v, want target.ErrSearchLanguage", lang, err)
		}
	}
	for lang, want := range map[string]string{"": "simple", "german": "german", "english": "english"} {
		tg, err := s.CreateTarget(t.Context(), target.Spec{Name: "x", SeedURL: "http://ok-" + want + ".test/", Scope: "host",
			MaxDepth: 1, MaxPages: 10, MaxAttempts: 1, SearchLanguage: lang})
		if err != nil {
			t.Fatalf("CreateTarget(%q): %v", lang, err)
		}
		if got := loadTarget(t, s, tg.ID).SearchLanguage; got != want {
			t.Errorf("CreateTarget(%q): stored %q, want %q", lang, got, want)
		}
	}
}

// TestSetSearchLanguageReindexes: changing a target's language queues its pages, and once
// they are indexed again its search stems; an unknown language or a deleting target is refused.
func TestSetSearchLanguageReindexes(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg, ids := docSite(t, s, "relang.test", "simple", doc{"a", "Loops", "Nested loops."})
	if got := hits(t, s, "loop"); len(got) != 0 {
		t.Fatalf("simple: loop found %v", got)
	}
	n, err := s.SetSearchLanguage(t.Context(), tg.ID, "english")
	if err != nil || n != 2 { // the seed page and a
		t.Fatalf("SetSearchLanguage = %d, %v; want 2 pages queued", n, err)
	}
	if got := backlog(t, s); got != 2 {
		t.Errorf("backlog = %d, want 2", got)
	}
	indexAll(t, s)
	if diff := gocmp.Diff([]int64{ids["a"]}, hits(t, s, "loop")); diff != "" {
		t.Errorf("english after re-index (-want +got):\n%s", diff)
	}
	if _, err := s.SetSearchLanguage(t.Context(), tg.ID, "klingon"); !errors.Is(err, target.ErrSearchLanguage) {
		t.Errorf("unknown language: %v", err)
	}
	if _, err := s.DeleteTarget(t.Context(), tg.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetSearchLanguage(t.Context(), tg.ID, "german"); !errors.Is(err, store.ErrTargetDeleting) {
		t.Errorf("deleting target: %v, want ErrTargetDeleting", err)
	}
}
