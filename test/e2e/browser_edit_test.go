package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trawlhq/trawl/test/testsite"
	"github.com/trawlhq/trawl/web"
)

// TestBrowserEditTarget: the add form shows several errors at once, with its sitemaps
// checkbox on the line of its label and a re-crawl interval that says empty means never; a
// running target is edited through its form, which also shows every error at once, and the
// change is seen on the target's page and in the API, where a lowered max_pages finishes it.
func TestBrowserEditTarget(t *testing.T) {
	t.Parallel()
	site := testsite.New(testsite.Options{Pages: 60})
	defer site.Close()
	sys := NewSystem(t)
	sys.StartAll(1, 1)
	b := NewBrowser(t)

	b.Run("open targets", chromedp.Navigate(sys.Addr+"/targets"), chromedp.WaitVisible(chromedp.CSS("#add-target")))
	if p := evalJS[string](b, `document.getElementById("f-recrawl_interval").placeholder`); !strings.Contains(p, "never") {
		t.Errorf("re-crawl interval placeholder = %q, want it to say empty means never", p)
	}
	// The checkbox is narrow and on its label's line, not stretched above the label's text.
	inline := `(() => {
		const cb = document.getElementById("f-sitemaps"), l = cb.closest("label");
		const r = cb.getBoundingClientRect(), lr = l.getBoundingClientRect();
		return r.width < 40 && r.left - lr.left < 10 && lr.height < 2.2 * r.height;
	})()`
	if !evalJS[bool](b, inline) {
		t.Errorf("the sitemaps checkbox does not sit inline with its label")
	}
	b.Run("submit several errors",
		chromedp.SetValue(chromedp.CSS("#f-seed_url"), "ftp://example.com/"),
		chromedp.SetValue(chromedp.CSS("#f-max_depth"), "-1"),
		chromedp.SetValue(chromedp.CSS("#f-include"), "docs/(["),
		chromedp.Click(chromedp.CSS("#add-target button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#form-errors")),
	)
	for _, f := range []string{"seed_url", "max_depth", "include"} {
		if b.Count("#"+f+"-error") != 1 {
			t.Errorf("the add form does not show the error on %s with the others", f)
		}
	}

	loc := addTargetViaForm(t, b, sys, site.SeedURL(), "5")
	id, _ := strconv.ParseInt(targetPath.FindStringSubmatch(loc)[1], 10, 64)
	b.Run("open the edit form", chromedp.Click(chromedp.CSS(`a[href$="/edit"]`)), chromedp.WaitVisible(chromedp.CSS("#edit-target")))
	if s := b.Text("#edit-seed"); s != site.SeedURL() {
		t.Errorf("the edit form shows the seed %q, want %q", s, site.SeedURL())
	}
	b.Run("submit several errors",
		chromedp.SetValue(chromedp.CSS("#f-max_pages"), "0"),
		chromedp.SetValue(chromedp.CSS("#f-exclude"), "[z-a]"),
		chromedp.Click(chromedp.CSS("#save-target")),
		chromedp.WaitVisible(chromedp.CSS("#form-errors")),
	)
	if b.Count("#max_pages-error") != 1 || b.Count("#exclude-error") != 1 {
		t.Errorf("the edit form does not show both errors at once")
	}
	b.Run("save",
		chromedp.SetValue(chromedp.CSS("#f-name"), "edited docs"),
		chromedp.SetValue(chromedp.CSS("#f-max_pages"), "3"),
		chromedp.SetValue(chromedp.CSS("#f-exclude"), `\.pdf$`),
		chromedp.SetValue(chromedp.CSS("#f-per_host_rps"), "0"),
		chromedp.Click(chromedp.CSS("#save-target")),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	)
	if h := b.Text("h1"); !strings.Contains(h, "edited docs") {
		t.Errorf("target page heading = %q, want the new name", h)
	}
	var got web.TargetJSON
	if code := sys.API(http.MethodGet, fmt.Sprintf("/api/targets/%d", id), nil, &got); code != http.StatusOK {
		t.Fatalf("GET target = %d", code)
	}
	if got.Name != "edited docs" || got.MaxPages != 3 || got.PerHostRPS != 0 || got.Exclude != `\.pdf$` {
		t.Errorf("API after the edit = %+v", got)
	}
	// max_pages below what the target holds: the queued URLs beyond it are cut and it finishes.
	b.WaitText(2*time.Minute, loc, "h1 .badge", "done")
	sys.API(http.MethodGet, fmt.Sprintf("/api/targets/%d", id), nil, &got)
	if got.Pending != 0 || got.Fetched >= int64(len(site.ExpectedURLs())) {
		t.Errorf("after a lower max_pages: fetched %d, pending %d; want it done early", got.Fetched, got.Pending)
	}
	if v := b.CSPViolations(); len(v) > 0 {
		t.Errorf("the dashboard's own pages violate its CSP: %v", v)
	}
}
