package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trawlhq/trawl/test/testenv"
	"github.com/trawlhq/trawl/test/testsite"
)

// number reads the integer shown by the element matching sel, or -1 while there is none (a
// live update may be replacing it).
func (b *Browser) number(sel string) int {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(e => e ? e.textContent : "")(document.querySelector(`+jsString(sel)+`))`))
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return -1
	}
	return n
}

// waitGrows waits until the number in sel is above from, without reloading: the page must
// update itself. It returns the new number.
func (b *Browser) waitGrows(timeout time.Duration, sel string, from int) int {
	b.t.Helper()
	var n int
	testenv.Eventually(b.t, timeout, 200*time.Millisecond, fmt.Sprintf("%s to grow past %d", sel, from), func() bool {
		n = b.number(sel)
		return n > from
	})
	return n
}

// markPage sets a marker on the window that a reload would lose.
func (b *Browser) markPage() {
	b.t.Helper()
	evalJS[int](b, `window.trawlLiveMarker = 7`)
}

// reloaded reports whether the page was reloaded since markPage.
func (b *Browser) reloaded() bool {
	b.t.Helper()
	return !evalJS[bool](b, `window.trawlLiveMarker === 7`)
}

// timeShown is a <time data-rel> element as the browser shows it.
type timeShown struct {
	Text     string `json:"text"`
	Title    string `json:"title"`
	Datetime string `json:"datetime"`
}

var (
	relText    = regexp.MustCompile(`^(now|in \d+(s|m\d\ds|h\d\dm)|\d+(s|m\d\ds|h\d\dm) ago|\d{4}-\d\d-\d\d \d\d:\d\d)$`)
	spanText   = regexp.MustCompile(`^\d+(s|m\d\ds|h\d\dm|d\d\dh)$`)
	kolkata    = time.FixedZone("IST", 5*3600+30*60)
	kolkataISO = "2006-01-02T15:04:05-07:00" // in kolkata: …+05:30
)

// checkTimes checks every relative time of the page, of which there must be at least min: its
// text is relative, and its title is its datetime in ISO 8601 in the browser's time zone
// (Asia/Kolkata, +05:30, set by the test).
func checkTimes(t *testing.T, b *Browser, page string, minimum int) {
	t.Helper()
	times := evalJS[[]timeShown](b, `Array.from(document.querySelectorAll("time[data-rel]")).map(e => ({text: e.textContent, title: e.title, datetime: e.getAttribute("datetime")}))`)
	if len(times) < minimum {
		t.Errorf("%s: %d relative times, want at least %d", page, len(times), minimum)
	}
	for _, tm := range times {
		at, err := time.Parse(time.RFC3339, tm.Datetime)
		if err != nil {
			t.Errorf("%s: <time datetime=%q> is not RFC 3339: %v", page, tm.Datetime, err)
			continue
		}
		if want := at.In(kolkata).Format(kolkataISO); tm.Title != want {
			t.Errorf("%s: <time datetime=%q> has title %q, want %q (ISO 8601 in the browser's time zone)", page, tm.Datetime, tm.Title, want)
		}
		if !relText.MatchString(tm.Text) {
			t.Errorf("%s: <time datetime=%q> says %q, want a relative time", page, tm.Datetime, tm.Text)
		}
	}
}

// nextFetches are the hosts table's "Next fetch" cells.
func nextFetches(b *Browser) []string {
	return evalJS[[]string](b, `Array.from(document.querySelectorAll("#hosts-table td.next-fetch")).map(e => e.textContent.trim())`)
}

// TestBrowserLiveCrawl watches a crawl without reloading: the targets list shows the new
// target and its fetched count grows; its page's counters and progress bar move, its times
// (start, elapsed, rate, ETA) are shown with local ISO times on hover, its throughput chart
// draws, and when it finishes the page says so, with its finish and duration, and its hosts
// are no longer scheduled.
func TestBrowserLiveCrawl(t *testing.T) {
	t.Parallel()
	site := testsite.New(testsite.Options{Pages: 120})
	defer site.Close()
	sys := NewSystem(t, "TRAWL_DASHBOARD_REFRESH=500ms")
	sys.StartAll(1, 1)
	b := NewBrowser(t)
	b.SetTimezone("Asia/Kolkata")

	b.Run("open targets", chromedp.Navigate(sys.Addr+"/targets"), chromedp.WaitVisible(chromedp.CSS("#add-target")))
	b.markPage()
	id := createTarget(t, sys, map[string]any{"seed_url": site.SeedURL(), "name": "live", "per_host_rps": 4})
	row := fmt.Sprintf("#target-%d", id)
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "the new target in the list", func() bool {
		return b.Count(row) == 1
	})
	fetched := row + ` td[data-field="fetched"]`
	n := b.waitGrows(60*time.Second, fetched, 0)
	b.waitGrows(30*time.Second, fetched, n)
	if b.reloaded() {
		t.Error("the targets list reloaded instead of updating over SSE")
	}

	loc := fmt.Sprintf("%s/targets/%d", sys.Addr, id)
	b.Run("open the target", chromedp.Navigate(loc), chromedp.WaitVisible(chromedp.CSS("#target-stats")))
	b.markPage()
	progress := func() float64 {
		return evalJS[float64](b, `Number(document.querySelector("#target-progress progress").value)`)
	}
	if s := b.Text("h1 .badge"); s != "running" {
		t.Fatalf("state = %q, want the crawl still running (slow it down if this machine is fast)", s)
	}
	p0 := progress()
	b.waitGrows(30*time.Second, "#stat-fetched", b.number("#stat-fetched"))
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "the progress bar to move", func() bool {
		return progress() > p0
	})
	if started := b.Text("#time-started"); !strings.HasSuffix(started, " ago") && started != "now" {
		t.Errorf("started %q, want a relative time in the past", started)
	}
	if el := b.Text("#time-elapsed"); !spanText.MatchString(el) {
		t.Errorf("elapsed %q, want a duration", el)
	}
	if r := b.Text("#time-rate"); !strings.Contains(r, "pages/s") {
		t.Errorf("rate %q, want pages/s", r)
	}
	if eta := b.Text("#time-eta"); !strings.HasPrefix(eta, "in ") && !strings.HasPrefix(eta, "now") && !strings.HasPrefix(eta, "unknown") {
		t.Errorf("ETA %q, want in … or unknown", eta)
	}
	checkTimes(t, b, "running target", 1)
	for _, cell := range nextFetches(b) {
		if strings.HasSuffix(cell, " ago") {
			t.Errorf("a running target's host says next fetch %q", cell)
		}
	}

	// It finishes while the page is open: the page says so by itself.
	b.WaitText(3*time.Minute, "", "h1 .badge", "done")
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "the finish and duration", func() bool {
		return b.Count("#time-finished time[data-rel]") == 1 && b.Count("#time-duration time") == 1
	})
	if d := b.Text("#time-duration"); !spanText.MatchString(d) {
		t.Errorf("duration %q, want a duration", d)
	}
	if b.Count("#time-eta") != 0 {
		t.Errorf("a finished target still shows an ETA: %q", b.Text("#time-eta"))
	}
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "the hosts to be no longer scheduled", func() bool {
		cells := nextFetches(b)
		for _, c := range cells {
			if c != "not scheduled" {
				return false
			}
		}
		return len(cells) > 0
	})
	// The chart drew the crawl: its peak is above zero (the bucket still filling is left out).
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "the throughput chart to show the fetches", func() bool {
		return evalJS[bool](b, `parseFloat((document.querySelector("#target-chart figcaption").textContent.match(/peak ([0-9.]+)/) || [0, "0"])[1]) > 0`)
	})
	if got, want := b.number("#stat-fetched"), len(site.ExpectedURLs()); got != want {
		t.Errorf("fetched = %d once done, want %d", got, want)
	}
	if b.reloaded() {
		t.Error("the target's page reloaded instead of updating over SSE")
	}
	checkTimes(t, b, "finished target", 2)
	// Rendered by the server, after a reload, the hosts are not scheduled either.
	b.Run("reload", chromedp.Navigate(loc), chromedp.WaitVisible(chromedp.CSS("#target-stats")))
	for _, cell := range nextFetches(b) {
		if cell != "not scheduled" {
			t.Errorf("a finished target's host says next fetch %q, want not scheduled", cell)
		}
	}
	if v := b.CSPViolations(); len(v) > 0 {
		t.Errorf("the dashboard's own pages violate its CSP: %v", v)
	}
}
