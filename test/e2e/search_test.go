package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/test/testenv"
)

// docsSite serves a small documentation site: one page with "event loops" in its title, one
// with "event loop" in its text only, and one with neither, all linked from the first page in
// that order (so the title match has the older URL).
func docsSite() *httptest.Server {
	pages := map[string][2]string{
		"/":  {"Docs", `Start here. <a href="/a">one</a> <a href="/b">two</a> <a href="/c">three</a>`},
		"/a": {"Event loops", "How callbacks are scheduled and run in order."},
		"/b": {"Scheduling", "The event loop runs callbacks in order."},
		"/c": {"Other", "Nothing to see here."},
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!DOCTYPE html><html><head><title>%s</title></head><body><p>%s</p></body></html>", p[0], p[1])
	}))
}

// TestBrowserSearchRanksAndCounts adds a target in english through the form and another in
// simple through the API, both crawling the same site. Searching "event loop" on the search
// page, filtered to the english target with the select, lists the page with the words in its
// title ("Event loops": stemmed) before the one with them in its text, although its URL is the
// older, and says how many pages match; without the filter the simple target's title match
// ("loops" is not "loop" there) does not show, and the count says so.
func TestBrowserSearchRanksAndCounts(t *testing.T) {
	t.Parallel()
	site := docsSite()
	defer site.Close()
	sys := NewSystem(t)
	sys.StartAll(1, 1)
	simple := createTarget(t, sys, map[string]any{"seed_url": site.URL + "/", "per_host_rps": 0, "name": "docs simple"})
	b := NewBrowser(t)

	b.Run("open targets", chromedp.Navigate(sys.Addr+"/targets"), chromedp.WaitVisible(chromedp.CSS("#add-target")))
	b.Run("add an english target",
		chromedp.SetValue(chromedp.CSS("#f-seed_url"), site.URL+"/"),
		chromedp.SetValue(chromedp.CSS("#f-name"), "docs english"),
		chromedp.SetValue(chromedp.CSS("#f-per_host_rps"), "0"),
		chromedp.SetValue(chromedp.CSS("#f-search_language"), "english"),
		chromedp.Click(chromedp.CSS("#add-target button[type=submit]")),
	)
	var loc string
	testenv.Eventually(t, 20*time.Second, 100*time.Millisecond, "redirect to the new target", func() bool {
		loc = b.Location()
		return targetPath.MatchString(loc)
	})
	english := targetPath.FindStringSubmatch(loc)[1]
	englishID, _ := strconv.ParseInt(english, 10, 64)
	if lang := query[string](t, sys.DSN, `SELECT search_language FROM targets WHERE id = $1`, englishID); lang[0] != "english" {
		t.Fatalf("the form stored search language %q, want english", lang[0])
	}
	sys.WaitDone(simple, 2*time.Minute)
	b.WaitText(2*time.Minute, loc, "h1 .badge", "done")
	testenv.Eventually(t, time.Minute, 100*time.Millisecond, "every page searchable", func() bool {
		return query[int64](t, sys.DSN, `SELECT count(*) FROM search_queue`)[0] == 0
	})

	b.Run("search one target",
		chromedp.Navigate(sys.Addr+"/search"),
		chromedp.WaitVisible(chromedp.CSS("#q")),
		chromedp.SetValue(chromedp.CSS("#q"), "event loop"),
		chromedp.SetValue(chromedp.CSS("#search-target"), english),
		chromedp.Submit(chromedp.CSS("#q")),
		chromedp.WaitVisible(chromedp.CSS("#results")),
	)
	if !strings.Contains(b.Location(), "target="+english) {
		t.Errorf("searched %s, want the english target's filter", b.Location())
	}
	titles := evalJS[[]string](b, `[...document.querySelectorAll("#results a.title")].map(a => a.textContent.trim())`)
	if diff := cmp.Diff([]string{"Event loops", "Scheduling"}, titles); diff != "" {
		t.Errorf("ranked results (-want +got):\n%s", diff)
	}
	if c := b.Text("#hit-count"); !strings.HasPrefix(c, "2 pages match.") {
		t.Errorf("count = %q, want 2 pages", c)
	}
	if sel := b.Value("#search-target"); sel != english {
		t.Errorf("the select shows target %q after the search, want %s", sel, english)
	}

	// Every target: the simple target's page B matches too ("loop" in its text), its page A
	// does not ("loops" in the title is not stemmed).
	b.Run("search every target",
		chromedp.SetValue(chromedp.CSS("#search-target"), ""),
		chromedp.Submit(chromedp.CSS("#q")),
	)
	b.WaitText(10*time.Second, "", "#hit-count", "3 pages match.")
	if strings.Contains(b.Location(), "target=") && !strings.Contains(b.Location(), "target=&") && !strings.HasSuffix(b.Location(), "target=") {
		t.Errorf("searched %s, want no target filter", b.Location())
	}
	if n := b.Count("#results > li"); n != 3 {
		t.Errorf("%d results over every target, want 3", n)
	}
	if first := b.Text("#results a.title"); first != "Event loops" {
		t.Errorf("first result over every target = %q, want the title match", first)
	}
	if v := b.CSPViolations(); len(v) > 0 {
		t.Errorf("CSP violations: %v", v)
	}
}
