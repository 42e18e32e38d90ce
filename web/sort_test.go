package web

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/process"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
)

// seedSizedPages crawls a target of n+1 pages through the real store (dispatch, then apply
// results) and returns it with each page's size by URL id. Sizes are distinct and not in URL
// order.
func seedSizedPages(t *testing.T, st *store.Store, n int) (store.Target, map[int64]int) {
	t.Helper()
	ctx := t.Context()
	tg, err := st.CreateTarget(ctx, target.Spec{Name: "sized", SeedURL: "http://sized.test/",
		Scope: "host", MaxDepth: 2, MaxPages: n + 1, PerHostRPS: 0, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	pol := process.Policy{RetryBase: time.Millisecond, RetryMax: 10 * time.Millisecond, Canon: crawlurl.Default}
	lim := store.DispatchLimits{MaxInFlight: 1000, HostMaxInFlight: 1000, Hosts: 100, Lease: time.Minute}
	sizes := map[int64]int{}
	result := func(j store.Job, size int, links ...string) store.Result {
		sizes[j.URLID] = size
		return store.Result{URLID: j.URLID, TargetID: j.TargetID, URL: j.URL, Status: 200, Title: "T", Text: "x",
			ContentType: "text/html", ContentHash: j.URL, Size: size, Links: links, StartedAt: time.Now()}
	}
	var links []string
	for i := range n {
		links = append(links, fmt.Sprintf("http://sized.test/p%03d", i))
	}
	for round := 0; ; round++ {
		jobs, err := st.Dispatch(ctx, lim)
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) == 0 {
			break
		}
		var rs []store.Result
		for _, j := range jobs {
			if round == 0 {
				rs = append(rs, result(j, 10_000, links...))
				continue
			}
			var i int
			if _, err := fmt.Sscanf(j.URL, "http://sized.test/p%d", &i); err != nil {
				t.Fatalf("unexpected job %s", j.URL)
			}
			rs = append(rs, result(j, 100+(i*37)%n))
		}
		if _, err := st.ApplyResults(ctx, rs, pol); err != nil {
			t.Fatal(err)
		}
	}
	if len(sizes) != n+1 {
		t.Fatalf("seeded %d pages, want %d", len(sizes), n+1)
	}
	return tg, sizes
}

var (
	pagesTable = regexp.MustCompile(`(?s)<table class="pages">.*?</table>`)
	pageLink   = regexp.MustCompile(`href="/pages/(\d+)"`)
	nextLink   = regexp.MustCompile(`<a rel="next" href="([^"]+)"`)
)

// sortHeaderOf returns a column header's aria-sort ("" when absent) and its link.
func sortHeaderOf(t *testing.T, body, col string) (aria, href string) {
	t.Helper()
	m := regexp.MustCompile(`<th [^>]*id="sort-` + col + `"[^>]*>\s*<a href="([^"]+)" class="sort"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no sortable header link for %s", col)
	}
	if a := regexp.MustCompile(`<th [^>]*id="sort-` + col + `"[^>]*aria-sort="([a-z]+)"`).FindStringSubmatch(body); a != nil {
		aria = a[1]
	}
	return aria, strings.ReplaceAll(m[1], "&amp;", "&")
}

// TestTargetPagesSortableHeaders sorts a target's page list by clicking (following) its column
// headers: each header is a link with aria-sort on the current column, a second click flips
// the direction, and the keyset pagination keeps the sort across pages.
func TestTargetPagesSortableHeaders(t *testing.T) {
	t.Parallel()
	ts, st := newTestServer(t, "", nil)
	c := newClient(t, ts.URL)
	const n = 59 // with the seed, 60 pages: two pages of 50
	tg, sizes := seedSizedPages(t, st, n)
	base := "/targets/" + i64(tg.ID)

	// rows returns the URL ids of a page list, following its "Next page" links.
	rows := func(path string) (ids []int64, first string) {
		t.Helper()
		for path != "" {
			resp, body := c.get(path)
			if resp.StatusCode != 200 {
				t.Fatalf("GET %s = %d", path, resp.StatusCode)
			}
			if first == "" {
				first = body
			}
			for _, m := range pageLink.FindAllStringSubmatch(pagesTable.FindString(body), -1) {
				id, _ := strconv.ParseInt(m[1], 10, 64)
				ids = append(ids, id)
			}
			path = ""
			if m := nextLink.FindStringSubmatch(body); m != nil {
				path = strings.ReplaceAll(m[1], "&amp;", "&")
			}
		}
		return ids, first
	}

	_, body := c.get(base)
	if aria, href := sortHeaderOf(t, body, "url"); aria != "ascending" || !strings.Contains(href, "sort=url") || !strings.Contains(href, "desc=1") {
		t.Errorf("default URL header: aria-sort %q, link %q; want ascending and a link to descending", aria, href)
	}
	for _, col := range []string{"status", "size", "fetched_at"} {
		if aria, href := sortHeaderOf(t, body, col); aria != "" || strings.Contains(href, "desc=") || !strings.Contains(href, "sort="+col) {
			t.Errorf("%s header: aria-sort %q, link %q; want no aria-sort and an ascending link", col, aria, href)
		}
	}

	// Click "Size": ascending by size across both pages.
	_, sizeHref := sortHeaderOf(t, body, "size")
	asc, first := rows(sizeHref)
	if len(asc) != n+1 {
		t.Fatalf("size-sorted list has %d rows over its pages, want %d", len(asc), n+1)
	}
	if !slices.IsSortedFunc(asc, func(a, b int64) int { return sizes[a] - sizes[b] }) {
		t.Errorf("rows are not in ascending size order: %v", asc)
	}
	if aria, _ := sortHeaderOf(t, first, "size"); aria != "ascending" {
		t.Errorf("after sorting by size, its aria-sort = %q", aria)
	}
	if aria, _ := sortHeaderOf(t, first, "url"); aria != "" {
		t.Errorf("the URL header keeps aria-sort %q after sorting by size", aria)
	}
	if m := nextLink.FindStringSubmatch(first); m == nil || !strings.Contains(m[1], "sort=size") || !strings.Contains(m[1], "after=") {
		t.Errorf("next page link %v does not keep the sort", m)
	}
	if !strings.Contains(first, `name="sort" value="size"`) {
		t.Errorf("the filter form drops the sort")
	}

	// Click "Size" again: descending, the exact reverse.
	_, descHref := sortHeaderOf(t, first, "size")
	if u, err := url.Parse(descHref); err != nil || u.Query().Get("desc") != "1" || u.Query().Get("after") != "" {
		t.Fatalf("second click on Size links to %q, want desc=1 from the first page", descHref)
	}
	desc, first := rows(descHref)
	if aria, _ := sortHeaderOf(t, first, "size"); aria != "descending" {
		t.Errorf("after the second click, aria-sort = %q", aria)
	}
	slices.Reverse(desc)
	if !slices.Equal(asc, desc) {
		t.Errorf("descending is not the reverse of ascending:\nasc  %v\ndesc %v", asc, desc)
	}
	// And a third click goes back to ascending.
	if _, href := sortHeaderOf(t, first, "size"); strings.Contains(href, "desc=") {
		t.Errorf("third click links to %q, want ascending", href)
	}
}
