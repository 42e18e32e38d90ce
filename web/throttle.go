package web

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// ThrottleLimits say how failed credentials (wrong passwords on the login form, wrong bearer
// tokens) are throttled. The zero value means DefaultThrottleLimits.
type ThrottleLimits struct {
	// FreeFailures is how many failures a client address may make before it is locked out.
	FreeFailures int
	// BaseLockout is the first lockout; each further failure doubles it, up to MaxLockout.
	BaseLockout, MaxLockout time.Duration
	// Forget is how long after its last failure an address starts afresh.
	Forget time.Duration
	// GlobalFailures is how many failures from all addresses together a GlobalWindow allows.
	// Past it, until the window ends, addresses with a recent failure wait (429) before they may
	// try again, while addresses without failures are still checked: the right credential keeps
	// working.
	GlobalFailures int
	GlobalWindow   time.Duration
	// MaxAddrs bounds the per-address table; when it is full the stalest entry goes.
	MaxAddrs int
}

// DefaultThrottleLimits: 5 free failures per address, then 1 s doubling to 15 min; 100
// failures a minute from everyone; 10,000 addresses remembered (about 1 MB).
func DefaultThrottleLimits() ThrottleLimits {
	return ThrottleLimits{FreeFailures: 5, BaseLockout: time.Second, MaxLockout: 15 * time.Minute, Forget: 15 * time.Minute,
		GlobalFailures: 100, GlobalWindow: time.Minute, MaxAddrs: 10_000}
}

// throttle counts failed credentials per client address and overall. It lives in memory: each
// dashboard instance counts for itself.
type throttle struct {
	l   ThrottleLimits
	now func() time.Time
	log *slog.Logger

	mu          sync.Mutex
	addrs       map[netip.Prefix]*failures
	windowStart time.Time
	windowFails int
	globalHeld  bool // logged for this window
}

type failures struct {
	n     int       // failures since the address last started afresh
	last  time.Time // of the last failure
	until time.Time // locked out until
}

func newThrottle(l ThrottleLimits, now func() time.Time, log *slog.Logger) *throttle {
	if l == (ThrottleLimits{}) {
		l = DefaultThrottleLimits()
	}
	return &throttle{l: l, now: now, log: log, addrs: map[netip.Prefix]*failures{}}
}

// clientKey is the unit of throttling: an IPv4 address, or the /64 of an IPv6 address (one
// machine usually holds a whole /64).
func clientKey(ip string) netip.Prefix {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// check checks a credential from the client at ip with ok, unless the client must wait first:
// then it returns how long, without calling ok. A wrong credential counts as a failure (what:
// "password" or "bearer token"); a right one clears the address. The check runs under the
// throttle's lock, so concurrent guesses from one address cannot all slip in before the first
// failure is counted; ok must be quick (a constant-time comparison).
func (t *throttle) check(ip, what string, ok func() bool) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if d := t.waitLocked(ip); d > 0 {
		return false, d
	}
	if ok() {
		delete(t.addrs, clientKey(ip))
		return true, 0
	}
	t.failLocked(ip, what)
	return false, 0
}

func (t *throttle) waitLocked(ip string) time.Duration {
	now := t.now()
	f := t.addrs[clientKey(ip)]
	if f == nil {
		return 0 // never failed: always checked, whatever the global count
	}
	if now.Sub(f.last) >= t.l.Forget && !now.Before(f.until) {
		delete(t.addrs, clientKey(ip))
		return 0
	}
	if d := f.until.Sub(now); d > 0 {
		return d
	}
	if t.globalExceeded(now) {
		return t.windowStart.Add(t.l.GlobalWindow).Sub(now)
	}
	return 0
}

func (t *throttle) globalExceeded(now time.Time) bool {
	if now.Sub(t.windowStart) >= t.l.GlobalWindow {
		t.windowStart, t.windowFails, t.globalHeld = now, 0, false
	}
	return t.windowFails >= t.l.GlobalFailures
}

func (t *throttle) failLocked(ip, what string) {
	now := t.now()
	key := clientKey(ip)
	f := t.addrs[key]
	if f == nil || now.Sub(f.last) >= t.l.Forget {
		if f == nil && len(t.addrs) >= t.l.MaxAddrs {
			t.evict(now)
		}
		f = &failures{}
		t.addrs[key] = f
	}
	f.n++
	f.last = now
	if over := f.n - t.l.FreeFailures; over >= 0 {
		d := t.l.BaseLockout << min(over, 30)
		if d > t.l.MaxLockout || d <= 0 {
			d = t.l.MaxLockout
		}
		f.until = now.Add(d)
		t.log.Warn("dashboard client locked out after failed credentials", "remote", ip, "credential", what,
			"failures", f.n, "retry_after", d.String())
	}
	t.globalExceeded(now)
	t.windowFails++
	if t.windowFails >= t.l.GlobalFailures && !t.globalHeld {
		t.globalHeld = true
		t.log.Warn("dashboard credential failures over the global limit: clients that failed wait for the next window",
			"failures", t.windowFails, "window", t.l.GlobalWindow.String())
	}
}

// evict makes room: it drops forgotten addresses, or else the one whose last failure is oldest.
func (t *throttle) evict(now time.Time) {
	var oldest netip.Prefix
	var oldestAt time.Time
	for k, f := range t.addrs {
		if now.Sub(f.last) >= t.l.Forget && now.After(f.until) {
			delete(t.addrs, k)
			continue
		}
		if oldestAt.IsZero() || f.last.Before(oldestAt) {
			oldest, oldestAt = k, f.last
		}
	}
	if len(t.addrs) >= t.l.MaxAddrs {
		delete(t.addrs, oldest)
	}
}

func (t *throttle) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.addrs)
}
