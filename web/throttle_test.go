package web

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/test/testenv"
)

// clock is a settable clock for the server.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newClientFrom is newClient whose connections come from the loopback address ip, so the
// server sees another client.
func newClientFrom(t *testing.T, base, ip string) *client {
	c := newClient(t, base)
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c.hc = &http.Client{Jar: jar, Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(c.hc.CloseIdleConnections)
	return c
}

type attempt struct {
	Status     int
	RetryAfter string
}

func (c *client) tryLogin(password string) attempt {
	c.t.Helper()
	if c.csrf == "" {
		c.get("/login")
	}
	resp, _ := c.postForm("/login", url.Values{"password": {password}, csrfFormField: {c.csrf}})
	return attempt{resp.StatusCode, resp.Header.Get("Retry-After")}
}

func (c *client) tryBearer(tok string) attempt {
	c.t.Helper()
	resp, _ := c.get("/api/targets", "Authorization", "Bearer "+tok)
	return attempt{resp.StatusCode, resp.Header.Get("Retry-After")}
}

// TestGuessesAreThrottled: wrong passwords and bearer tokens from one address lock it out
// (429, Retry-After growing with each failure), each lockout is logged once, and the right
// credential keeps working from other addresses.
func TestGuessesAreThrottled(t *testing.T) {
	t.Parallel()
	const pw = "correct horse"
	tok := NewAuth(pw).APIToken()
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var logs testenv.SyncBuffer
	ts, _ := newTestServer(t, pw, func(s *Server) {
		s.Now = clk.Now
		s.Log = slog.New(slog.NewJSONHandler(&logs, nil))
		s.Throttle = ThrottleLimits{FreeFailures: 3, BaseLockout: 10 * time.Second, MaxLockout: time.Minute, Forget: 15 * time.Minute,
			GlobalFailures: 1000, GlobalWindow: time.Minute, MaxAddrs: 100}
	})
	attacker, victim := newClientFrom(t, ts.URL, "127.0.0.2"), newClientFrom(t, ts.URL, "127.0.0.3")
	var got []attempt
	for range 4 {
		got = append(got, attacker.tryLogin("guess"))
	}
	got = append(got, attacker.tryLogin(pw)) // locked out: not even the right one is checked
	got = append(got, victim.tryLogin(pw))   // another address is not
	clk.Add(10 * time.Second)
	got = append(got, attacker.tryLogin("guess"), attacker.tryLogin("guess"))
	clk.Add(20 * time.Second)
	got = append(got, attacker.tryLogin("guess"), attacker.tryLogin("guess"))
	want := []attempt{{401, ""}, {401, ""}, {401, ""}, {429, "10"}, {429, "10"}, {303, ""}, {401, ""}, {429, "20"}, {401, ""}, {429, "40"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("login attempts (-want +got):\n%s", diff)
	}

	// Bearer tokens are counted the same way.
	scripter, script := newClientFrom(t, ts.URL, "127.0.0.4"), newClientFrom(t, ts.URL, "127.0.0.5")
	got = nil
	for range 4 {
		got = append(got, scripter.tryBearer("trawl_guess"))
	}
	got = append(got, scripter.tryBearer(tok), script.tryBearer(tok))
	want = []attempt{{401, ""}, {401, ""}, {401, ""}, {429, "10"}, {429, "10"}, {200, ""}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bearer attempts (-want +got):\n%s", diff)
	}

	// One log line per lockout, naming the address, never the guess.
	var lockouts []string
	for l := range strings.Lines(logs.String()) {
		if strings.Contains(l, "locked out") {
			lockouts = append(lockouts, l)
		}
		if strings.Contains(l, "guess") || strings.Contains(l, pw) {
			t.Errorf("a credential reached the log: %s", l)
		}
	}
	for i, ip := range []string{"127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.4"} {
		if i >= len(lockouts) || !strings.Contains(lockouts[i], `"remote":"`+ip+`"`) {
			t.Errorf("lockout log lines %d: want one for %s in:\n%s", len(lockouts), ip, strings.Join(lockouts, ""))
			break
		}
	}
	if len(lockouts) != 4 {
		t.Errorf("%d lockout log lines, want 4", len(lockouts))
	}
}

// TestGlobalThrottleSparesTheRightCredential: past the global failure limit, addresses that
// failed wait for the next window, while an address without failures is still checked, so the
// right password works.
func TestGlobalThrottleSparesTheRightCredential(t *testing.T) {
	t.Parallel()
	const pw = "correct horse"
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	ts, _ := newTestServer(t, pw, func(s *Server) {
		s.Now = clk.Now
		s.Throttle = ThrottleLimits{FreeFailures: 100, BaseLockout: time.Second, MaxLockout: time.Minute, Forget: 15 * time.Minute,
			GlobalFailures: 3, GlobalWindow: time.Minute, MaxAddrs: 100}
	})
	var got []attempt
	bots := []*client{newClientFrom(t, ts.URL, "127.0.1.1"), newClientFrom(t, ts.URL, "127.0.1.2"), newClientFrom(t, ts.URL, "127.0.1.3")}
	for _, b := range bots {
		got = append(got, b.tryLogin("guess"))
	}
	clk.Add(15 * time.Second)
	got = append(got, bots[0].tryLogin("guess"), bots[1].tryLogin(pw))
	got = append(got, newClientFrom(t, ts.URL, "127.0.1.4").tryLogin(pw), newClientFrom(t, ts.URL, "127.0.1.5").tryLogin("guess"))
	clk.Add(45 * time.Second)
	got = append(got, bots[2].tryLogin("guess"))
	want := []attempt{{401, ""}, {401, ""}, {401, ""}, {429, "45"}, {429, "45"}, {303, ""}, {401, ""}, {401, ""}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
}

func TestThrottleTableIsBounded(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := newThrottle(ThrottleLimits{FreeFailures: 1, BaseLockout: time.Minute, MaxLockout: time.Hour, Forget: time.Hour,
		GlobalFailures: 1 << 30, GlobalWindow: time.Minute, MaxAddrs: 3}, func() time.Time { return now }, slog.New(slog.DiscardHandler))
	for i := range 10 {
		now = now.Add(time.Second)
		th.fail(fmt.Sprintf("10.0.0.%d", i), "password")
	}
	if n := th.size(); n != 3 {
		t.Errorf("%d addresses remembered, want at most 3", n)
	}
	if th.wait("10.0.0.9") == 0 {
		t.Error("the latest address was evicted")
	}
	// An IPv6 client is throttled by its /64.
	th.fail("2001:db8:1:2::1", "password")
	if th.wait("2001:db8:1:2:ffff::9") == 0 {
		t.Error("another address of the same /64 is not locked out")
	}
	if th.wait("2001:db8:1:3::1") != 0 {
		t.Error("another /64 is locked out")
	}
}

// TestForwardedForIsTrustedOnlyFromProxies: a client cannot escape its lockout by sending
// X-Forwarded-For, unless its peer address is a configured trusted proxy, whose forwarded
// addresses are then told apart.
func TestForwardedForIsTrustedOnlyFromProxies(t *testing.T) {
	t.Parallel()
	const pw = "correct horse"
	limits := ThrottleLimits{FreeFailures: 1, BaseLockout: time.Minute, MaxLockout: time.Hour, Forget: time.Hour,
		GlobalFailures: 1000, GlobalWindow: time.Minute, MaxAddrs: 100}
	direct, _ := newTestServer(t, pw, func(s *Server) { s.Throttle = limits })
	proxied, _ := newTestServer(t, pw, func(s *Server) {
		s.Throttle = limits
		s.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.2.0/24")}
	})
	try := func(c *client, xff string) int {
		c.get("/login")
		resp, _ := c.postForm("/login", url.Values{"password": {"guess"}, csrfFormField: {c.csrf}}, "X-Forwarded-For", xff)
		return resp.StatusCode
	}
	d := newClientFrom(t, direct.URL, "127.0.2.1")
	p := newClientFrom(t, proxied.URL, "127.0.2.1")
	got := []int{try(d, "192.0.2.1"), try(d, "192.0.2.2"), try(p, "192.0.2.1"), try(p, "192.0.2.2"), try(p, "192.0.2.1")}
	if diff := cmp.Diff([]int{401, 429, 401, 401, 429}, got); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
}

// TestConcurrentGuessesAreCounted: guesses sent at once from one address cannot all be checked
// before the first failures are counted.
func TestConcurrentGuessesAreCounted(t *testing.T) {
	t.Parallel()
	ts, _ := newTestServer(t, "pw", func(s *Server) {
		s.Throttle = ThrottleLimits{FreeFailures: 3, BaseLockout: time.Minute, MaxLockout: time.Hour, Forget: time.Hour,
			GlobalFailures: 1000, GlobalWindow: time.Minute, MaxAddrs: 100}
	})
	c := newClientFrom(t, ts.URL, "127.0.3.1")
	codes := make([]int, 30)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.URL+"/api/targets", nil)
			req.Header.Set("Authorization", "Bearer guess")
			resp, err := c.hc.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	count := map[int]int{}
	for _, code := range codes {
		count[code]++
	}
	if diff := cmp.Diff(map[int]int{401: 3, 429: 27}, count); diff != "" {
		t.Errorf("answers to 30 guesses at once (-want +got):\n%s", diff)
	}
}

// wait returns how long the client at ip must wait before its credential is checked.
func (t *throttle) wait(ip string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.waitLocked(ip)
}

// fail records a failed credential from ip, as check does for a wrong one.
func (t *throttle) fail(ip, what string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failLocked(ip, what)
}
