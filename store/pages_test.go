package store_test

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/test/testenv"
)

func TestNotModifiedKeepsPage(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", nil)
	j := dispatch(t, s, limits)[0]
	r := ok(j)
	r.Title, r.Text, r.ContentHash, r.ETag = "Kept", "kept body", "h1", `"e1"`
	apply(t, s, r)
	if _, err := s.RecrawlTarget(t.Context(), tg.ID); err != nil {
		t.Fatal(err)
	}
	j = dispatch(t, s, limits)[0]
	if j.ETag != `"e1"` {
		t.Fatalf("re-crawl job ETag = %q, want the stored one", j.ETag)
	}
	apply(t, s, store.Result{URLID: j.URLID, TargetID: j.TargetID, URL: j.URL, Status: 304, DurationMS: 5, StartedAt: time.Now()})
	indexAll(t, s)
	d, err := s.PageDetail(t.Context(), j.URLID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Page == nil || d.Page.Title != "Kept" || d.Page.Status != 200 || d.Page.ContentHash != "h1" || d.Page.DurationMS != 5 {
		t.Fatalf("page after 304 = %+v, want the stored content with the new duration", d.Page)
	}
	res, err := s.Search(t.Context(), store.SearchQuery{Query: "kept"})
	if err != nil || len(res.Hits) != 1 {
		t.Fatalf("search after 304 = %+v, %v; want the page", res, err)
	}
}

// pageKey is a page's sort key for the order the test expects.
func pageLess(sortBy string, desc bool) func(a, b store.PageRow) int {
	return func(a, b store.PageRow) int {
		var c int
		switch sortBy {
		case store.SortURL:
			c = strings.Compare(a.URL, b.URL)
		case store.SortFetchedAt:
			c = a.FetchedAt.Compare(b.FetchedAt)
		case store.SortStatus:
			c = cmp.Compare(a.Status, b.Status)
		case store.SortSize:
			c = cmp.Compare(a.Size, b.Size)
		}
		if c == 0 {
			c = cmp.Compare(a.URLID, b.URLID)
		}
		if desc {
			c = -c
		}
		return c
	}
}

func TestPagesKeysetPagination(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg, _ := site(t, s, "example.test", 40, 200, 404, 200, 500, 301)
	site(t, s, "noise.test", 5) // another target's pages never show up

	all, err := s.Pages(t.Context(), store.PageQuery{TargetID: tg.ID, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Rows) != 41 || all.NextCursor != "" {
		t.Fatalf("all pages = %d rows, cursor %q; want 41 and none", len(all.Rows), all.NextCursor)
	}
	type filter struct{ status, ctype string }
	for _, sortBy := range []string{store.SortURL, store.SortFetchedAt, store.SortStatus, store.SortSize} {
		for _, desc := range []bool{false, true} {
			for _, f := range []filter{{}, {status: "2xx"}, {status: "404"}, {ctype: "TEXT/html"}, {status: "5xx", ctype: "application/pdf"}} {
				t.Run(fmt.Sprintf("%s-desc=%t-%s-%s", sortBy, desc, f.status, f.ctype), func(t *testing.T) {
					var want []store.PageRow
					for _, p := range all.Rows {
						if f.status == "2xx" && (p.Status < 200 || p.Status > 299) ||
							f.status == "5xx" && p.Status < 500 ||
							f.status == "404" && p.Status != 404 ||
							f.ctype != "" && !strings.HasPrefix(strings.ToLower(p.ContentType), strings.ToLower(f.ctype)) {
							continue
						}
						want = append(want, p)
					}
					if len(want) == 0 {
						t.Fatal("filter matches nothing: the test proves nothing")
					}
					slices.SortFunc(want, pageLess(sortBy, desc))
					var got []store.PageRow
					q := store.PageQuery{TargetID: tg.ID, Sort: sortBy, Desc: desc, Status: f.status, ContentType: f.ctype, Limit: 4}
					for range 100 {
						pl, err := s.Pages(t.Context(), q)
						if err != nil {
							t.Fatal(err)
						}
						got = append(got, pl.Rows...)
						if pl.NextCursor == "" {
							break
						}
						q.After = pl.NextCursor
					}
					if diff := gocmp.Diff(want, got); diff != "" {
						t.Errorf("pages (-want +got):\n%s", diff)
					}
				})
			}
		}
	}
	for _, bad := range []store.PageQuery{
		{TargetID: tg.ID, Sort: "title"},
		{TargetID: tg.ID, Status: "2xy"},
		{TargetID: tg.ID, Status: "99"},
		{TargetID: tg.ID, After: "!!!"},
		{TargetID: tg.ID, Sort: store.SortSize, After: all.Rows[0].URL},
		{TargetID: 0},
	} {
		if _, err := s.Pages(t.Context(), bad); !errors.Is(err, store.ErrInvalidQuery) {
			t.Errorf("Pages(%+v) = %v, want ErrInvalidQuery", bad, err)
		}
	}
	// A cursor made for one sort does not decode for another.
	first, _ := s.Pages(t.Context(), store.PageQuery{TargetID: tg.ID, Sort: store.SortURL, Limit: 2})
	if _, err := s.Pages(t.Context(), store.PageQuery{TargetID: tg.ID, Sort: store.SortSize, After: first.NextCursor}); !errors.Is(err, store.ErrInvalidQuery) {
		t.Errorf("url cursor with size sort = %v, want ErrInvalidQuery", err)
	}
}
