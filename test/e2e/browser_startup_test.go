package e2e

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trawlhq/trawl/test/harness"
	"github.com/trawlhq/trawl/test/testenv"
)

// gate is a TCP proxy to addr that drops every connection until opened.
type gate struct {
	ln   net.Listener
	open atomic.Bool
	wg   sync.WaitGroup
	mu   sync.Mutex
	cs   []net.Conn
}

func newGate(t *testing.T, to string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{ln: ln}
	g.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !g.open.Load() {
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			g.mu.Lock()
			g.cs = append(g.cs, c, u)
			g.mu.Unlock()
			g.wg.Go(func() { _, _ = io.Copy(u, c); u.Close() })
			g.wg.Go(func() { _, _ = io.Copy(c, u); c.Close() })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		g.mu.Lock()
		for _, c := range g.cs {
			c.Close()
		}
		g.mu.Unlock()
		g.wg.Wait()
	})
	return g
}

func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDashboardStartsWithoutDatabase starts the dashboard while its database is unreachable:
// it listens at once, says so on every page (503, not a 500 or a refused connection), and
// switches to the real pages by itself once the database answers.
func TestDashboardStartsWithoutDatabase(t *testing.T) {
	t.Parallel()
	_, dsn := testenv.Store(t)
	topo, _ := testenv.Broker(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	g := newGate(t, u.Host)
	u.Host = g.ln.Addr().String()
	sys := harness.NewSystemAt(t, u.String(), testenv.AMQPURL(), topo)
	addr := harness.FreeAddr(t)
	sys.Start("dashboard", nil, "TRAWL_DASHBOARD_ADDR="+addr)
	base := "http://" + addr

	testenv.Eventually(t, 20*time.Second, 50*time.Millisecond, "the dashboard to listen", func() bool {
		code, _ := httpGet(t, base+"/")
		return code != 0
	})
	if code, body := httpGet(t, base+"/"); code != http.StatusServiceUnavailable || !strings.Contains(body, "database is unreachable") {
		t.Errorf("GET / while the database is down = %d:\n%s", code, body)
	}
	if code, body := httpGet(t, base+"/api/targets"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"error"`) {
		t.Errorf("GET /api/targets while the database is down = %d %s", code, body)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := httpGet(t, base+p); code != http.StatusServiceUnavailable || !strings.Contains(body, "starting") {
			t.Errorf("%s while the database is down = %d %s, want 503 starting", p, code, body)
		}
	}

	// SIGTERM while waiting for the database is a clean exit (Stop fails the test otherwise).
	addr2 := harness.FreeAddr(t)
	waiting := sys.Start("dashboard", nil, "TRAWL_DASHBOARD_ADDR="+addr2)
	testenv.Eventually(t, 20*time.Second, 50*time.Millisecond, "the second dashboard to listen", func() bool {
		code, _ := httpGet(t, "http://"+addr2+"/healthz")
		return code == http.StatusServiceUnavailable
	})
	sys.Stop(waiting, 20*time.Second)

	b := NewBrowser(t)
	b.Run("open while down", chromedp.Navigate(base+"/"))
	if s := b.Text(".banner"); !strings.Contains(s, "database is unreachable") {
		t.Errorf("banner = %q", s)
	}
	g.open.Store(true)
	// The start-up page reloads itself and becomes the overview.
	b.WaitText(60*time.Second, "", "h1", "Overview")
	for _, p := range []string{"/api/targets", "/healthz"} {
		if code, _ := httpGet(t, base+p); code != http.StatusOK {
			t.Errorf("%s after the database came up = %d", p, code)
		}
	}
	if v := b.CSPViolations(); len(v) > 0 {
		t.Errorf("CSP violations: %v", v)
	}
}
