package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/trawlhq/trawl/test/testenv"
)

// chromiumPath finds Debian's Chromium. With CI=true a missing browser fails the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is required in CI for the browser tests but was not found (apt-get install -y chromium)")
	}
	t.Skip("chromium not found (set CI=true to fail instead); install it with apt-get install -y chromium")
	return ""
}

// Browser is one headless Chromium tab. It records JavaScript dialogs (alert, confirm,
// prompt), so tests can assert that crawled content never runs.
type Browser struct {
	t   *testing.T
	ctx context.Context

	mu      sync.Mutex
	dialogs []string
	console []string // browser log entries of level error (CSP violations among them)
	// requests are the URLs the page requested, in order (documents, scripts, fetches,
	// event streams), so a test can tell polling from streaming.
	requests []string
	// AcceptDialogs answers confirm() dialogs with OK (for hx-confirm); alerts are recorded
	// either way.
	AcceptDialogs bool
}

// NewBrowser starts headless Chromium with a fresh profile; it is closed when the test ends.
func NewBrowser(t *testing.T) *Browser {
	t.Helper()
	path := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	b := &Browser{t: t, ctx: ctx}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		wg.Wait()
	})
	// Start the browser now so its start-up is not charged to the first step's timeout.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enable browser log: %v", err)
	}
	entries := chromedp.Events(ctx, cdplog.EntryAdded)
	wg.Go(func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			if ev.Entry != nil && ev.Entry.Level == cdplog.EntryLevelError {
				b.mu.Lock()
				b.console = append(b.console, ev.Entry.Text)
				b.mu.Unlock()
			}
		}
	})
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("enable network events: %v", err)
	}
	sent := chromedp.Events(ctx, network.RequestWillBeSent)
	wg.Go(func() {
		for ev, err := range sent {
			if err != nil {
				return
			}
			if ev.Request != nil {
				b.mu.Lock()
				b.requests = append(b.requests, ev.Request.URL)
				b.mu.Unlock()
			}
		}
	})
	opening := chromedp.Events(ctx, page.JavascriptDialogOpening)
	wg.Go(func() {
		for ev, err := range opening {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, string(ev.Type)+": "+ev.Message)
			accept := b.AcceptDialogs && ev.Type == page.DialogTypeConfirm
			b.mu.Unlock()
			wg.Go(func() {
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: accept})
			})
		}
	})
	return b
}

// Dialogs returns the JavaScript dialogs opened so far.
func (b *Browser) Dialogs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.dialogs...)
}

// Requests returns the URLs requested so far whose path starts with prefix.
func (b *Browser) Requests(prefix string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, u := range b.requests {
		if i := strings.Index(u, "://"); i >= 0 {
			if j := strings.IndexByte(u[i+3:], '/'); j >= 0 && strings.HasPrefix(u[i+3+j:], prefix) {
				out = append(out, u)
			}
		}
	}
	return out
}

// SetTimezone makes the page see the IANA time zone tz, as a browser there would.
func (b *Browser) SetTimezone(tz string) {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: tz}); err != nil {
		b.t.Fatalf("browser: set time zone %s: %v", tz, err)
	}
}

// CSPViolations returns the browser's errors about the Content-Security-Policy: the
// dashboard's own pages must not trigger any.
func (b *Browser) CSPViolations() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, e := range b.console {
		if strings.Contains(e, "Content Security Policy") {
			out = append(out, e)
		}
	}
	return out
}

// Run runs actions with a 30-second budget and fails the test on error.
func (b *Browser) Run(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := b.try(30*time.Second, actions...); err != nil {
		b.t.Fatalf("browser: %s: %v", step, err)
	}
}

func (b *Browser) try(timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

func get[T any](b *Browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// Text returns the visible text of the first element matching the CSS selector sel.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	return strings.TrimSpace(get(b, "text of "+sel, chromedp.Text(chromedp.CSS(sel))))
}

// Value returns the value of the form field matching sel.
func (b *Browser) Value(sel string) string {
	b.t.Helper()
	return get(b, "value of "+sel, chromedp.Value(chromedp.CSS(sel)))
}

// Location returns the current URL.
func (b *Browser) Location() string {
	b.t.Helper()
	return get(b, "location", chromedp.Location())
}

// evalJS evaluates a JavaScript expression in the page.
func evalJS[T any](b *Browser, js string, opts ...chromedp.EvaluateOption) T {
	b.t.Helper()
	return get(b, "eval", chromedp.Evaluate[T](js, opts...))
}

// WaitText waits until the element matching sel contains want, reloading url between polls
// when url is not empty (otherwise the page must update itself, over SSE or htmx).
func (b *Browser) WaitText(timeout time.Duration, url, sel, want string) {
	b.t.Helper()
	testenv.Eventually(b.t, timeout, 300*time.Millisecond, sel+" to contain "+want, func() bool {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		if url != "" {
			if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
				return false
			}
		}
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		return err == nil && strings.Contains(s, want)
	})
}

// Count returns how many elements match the CSS selector.
func (b *Browser) Count(sel string) int {
	b.t.Helper()
	return evalJS[int](b, `document.querySelectorAll(`+jsString(sel)+`).length`)
}

func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
