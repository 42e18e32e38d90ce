package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/trawlhq/trawl/test/testenv"
	"github.com/trawlhq/trawl/test/testsite"
)

// axeVersion is the axe-core release the accessibility test runs in the page; .ci/run
// installs exactly this version from npm (see install_axe there, and
// docs/adr/0059-axe-core-in-the-browser-tests.md).
const axeVersion = "4.14.1"

// axeScript returns axe-core's axe.min.js, from $TRAWL_AXE_JS or the cache .ci/run fills
// ($HOME/.cache/trawl/axe-core-<version>/axe.min.js). With CI=true a missing file fails the
// test; otherwise it skips, saying how to install it.
func axeScript(t *testing.T) string {
	t.Helper()
	path := os.Getenv("TRAWL_AXE_JS")
	if path == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(home, ".cache", "trawl", "axe-core-"+axeVersion, "axe.min.js")
	}
	js, err := os.ReadFile(path)
	if err == nil && len(js) > 0 {
		return string(js)
	}
	install := fmt.Sprintf("mkdir -p %[1]s && cd %[1]s && npm pack axe-core@%[2]s && tar xzf axe-core-%[2]s.tgz --strip-components=1 package/axe.min.js && rm axe-core-%[2]s.tgz (or set TRAWL_AXE_JS)", filepath.Dir(path), axeVersion)
	if os.Getenv("CI") == "true" {
		t.Fatalf("axe-core %s is required in CI for the accessibility test but %s is missing: %v; install it with: %s", axeVersion, path, err, install)
	}
	t.Skipf("axe-core %s not found at %s (set CI=true to fail instead); install it with: %s", axeVersion, path, install)
	return ""
}

// axeViolation is one rule axe-core found broken, with the CSS selectors of the elements
// that break it.
type axeViolation struct {
	ID      string   `json:"id"`
	Impact  string   `json:"impact"`
	Help    string   `json:"help"`
	Targets []string `json:"targets"`
}

// axeRun is the script that runs axe-core on the whole document and keeps the serious and
// critical violations.
const axeRun = `axe.run(document, {resultTypes: ['violations']}).then(r => r.violations
	.filter(v => v.impact === 'serious' || v.impact === 'critical')
	.map(v => ({id: v.id, impact: v.impact, help: v.help,
		targets: v.nodes.map(n => n.target.map(s => Array.isArray(s) ? s.join(' >>> ') : s).join(', '))})))`

// checkA11y injects axe-core into the current page, runs it in the light and the dark colour
// scheme (app.css has one palette for each), and fails the test with each serious or critical
// violation (rule, impact, elements).
func (b *Browser) checkA11y(axe, page string) {
	b.t.Helper()
	if !evalJS[bool](b, axe+"\n;typeof axe === 'object'") {
		b.t.Fatalf("%s: axe-core did not load", page)
	}
	for _, scheme := range []string{"light", "dark"} {
		b.colorScheme(scheme)
		found := evalJS[[]axeViolation](b, axeRun, chromedp.EvalAwaitPromise)
		for _, v := range found {
			b.t.Errorf("%s (%s): %s violation %s (%s) on %s", page, scheme, v.Impact, v.ID, v.Help, strings.Join(v.Targets, " | "))
		}
	}
	b.colorScheme("light")
}

// colorScheme makes the page see prefers-color-scheme: scheme.
func (b *Browser) colorScheme(scheme string) {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
	}); err != nil {
		b.t.Fatalf("browser: prefers-color-scheme %s: %v", scheme, err)
	}
}

// TestA11yDashboardPages runs axe-core in every dashboard page as a user sees it: the
// overview, the targets list, a target while running and when done, its edit form and the
// delete confirmation, search with results, a page's detail, retries with a dead letter and
// the purge confirmation, workers, and the login form (empty and with an error). None may
// have a serious or critical accessibility violation, in the light or the dark colour scheme.
func TestA11yDashboardPages(t *testing.T) {
	t.Parallel()
	axe := axeScript(t)
	small := testsite.New(testsite.Options{Pages: 20})
	defer small.Close()
	big := testsite.New(testsite.Options{Pages: 3000})
	defer big.Close()
	sys := NewSystem(t)
	sys.StartAll(1, 1)
	doneID := createTarget(t, sys, map[string]any{"seed_url": small.SeedURL(), "name": "small (done)", "per_host_rps": 0})
	sys.WaitDone(doneID, 2*time.Minute)
	runID := createTarget(t, sys, map[string]any{"seed_url": big.SeedURL(), "name": "big (running)", "per_host_rps": 2, "max_pages": 3000})
	pageID := query[int64](t, sys.DSN, `SELECT id FROM urls WHERE target_id = $1 AND url = $2`, doneID, small.SeedURL())[0]
	testenv.Eventually(t, time.Minute, 100*time.Millisecond, "every page searchable", func() bool {
		return query[int64](t, sys.DSN, `SELECT count(*) FROM search_queue`)[0] == 0
	})
	publishPoison(t, sys) // so the retries page lists a dead letter

	b := NewBrowser(t)
	b.WaitText(60*time.Second, sys.Addr+"/retries", "#dead-letters", sys.Topo.PagesQueue())
	b.checkA11y(axe, "retries")
	b.WaitText(60*time.Second, fmt.Sprintf("%s/targets/%d", sys.Addr, runID), "#target-stats", "running")
	b.checkA11y(axe, "target detail (running)")
	pages := []struct{ name, path, ready string }{
		{"overview", "/", "#active-targets"},
		{"targets", "/targets", "#add-target"},
		{"target detail (done)", fmt.Sprintf("/targets/%d", doneID), "#target-stats"},
		{"edit form", fmt.Sprintf("/targets/%d/edit", runID), "#edit-target"},
		{"delete confirmation", fmt.Sprintf("/targets/%d/delete", doneID), "form"},
		{"search", "/search?q=page", "#results"},
		{"page detail", fmt.Sprintf("/pages/%d", pageID), "h1"},
		{"purge confirmation", "/dead-letters/purge", "form"},
		{"workers", "/workers", "main"},
		{"not found", "/pages/999999999", "main"},
	}
	for _, p := range pages {
		b.Run("open "+p.name, chromedp.Navigate(sys.Addr+p.path), chromedp.WaitVisible(chromedp.CSS(p.ready)))
		b.checkA11y(axe, p.name)
	}
	// The add and edit forms showing their inline errors.
	b.Run("add with errors", chromedp.Navigate(sys.Addr+"/targets"),
		chromedp.WaitVisible(chromedp.CSS("#add-target")),
		chromedp.SetValue(chromedp.CSS("#f-seed_url"), "ftp://example.com/"),
		chromedp.SetValue(chromedp.CSS("#f-max_depth"), "-1"),
		chromedp.Click(chromedp.CSS("#add-target button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#form-errors")))
	b.checkA11y(axe, "targets with form errors")
	b.Run("edit with errors", chromedp.Navigate(fmt.Sprintf("%s/targets/%d/edit", sys.Addr, runID)),
		chromedp.WaitVisible(chromedp.CSS("#edit-target")),
		chromedp.SetValue(chromedp.CSS("#f-max_pages"), "0"),
		chromedp.SetValue(chromedp.CSS("#f-exclude"), "[z-a]"),
		chromedp.Click(chromedp.CSS("#save-target")),
		chromedp.WaitVisible(chromedp.CSS("#form-errors")))
	b.checkA11y(axe, "edit form with errors")

	locked := NewSystem(t, "TRAWL_DASHBOARD_PASSWORD=s3cret-pass")
	locked.StartAll(0, 0)
	b.Run("login", chromedp.Navigate(locked.Addr+"/login"), chromedp.WaitVisible(chromedp.CSS("#password")))
	b.checkA11y(axe, "login")
	b.Run("wrong password", chromedp.SetValue(chromedp.CSS("#password"), "nope"), chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#password-error")))
	b.checkA11y(axe, "login with an error")
}
