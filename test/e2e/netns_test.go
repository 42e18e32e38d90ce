package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/test/harness"
	"github.com/trawlhq/trawl/test/testenv"
)

// TestNetnsLinkCut runs two crawler workers on their own network hosts (Linux network
// namespaces joined to the test by veth pairs on a private subnet the test creates), cuts one
// host's link in the middle of a crawl, restores it, and checks that the crawl completes with
// every page stored exactly once, that the cut-off worker's heartbeats stop and come back, and
// that the dashboard's workers list drops the worker and lists it again. The broker (through a relay) and the site are reached at a service
// address of the test's own; nothing leaves the test's namespaces and loopback.
//
// It needs root and iproute2, and skips with a message elsewhere.
func TestNetnsLinkCut(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("netns test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("netns test needs root (ip netns, veth); skipped")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("netns test needs iproute2 (ip); skipped")
	}
	n := newNetLab(t)

	// The site and a broker relay listen on the service address, reachable from both hosts.
	site := newNetSite(t, n.svc, 400)
	amqpURL := n.relay(t, testenv.AMQPURL())

	sys := NewSystem(t, "TRAWL_LEASE_DURATION=2m")
	dashAddr := harness.FreeAddr(t)
	sys.Start("dashboard", nil, "TRAWL_DASHBOARD_ADDR="+dashAddr)
	sys.Addr = "http://" + dashAddr
	sys.Start("processor", nil)
	testenv.Eventually(t, 30*time.Second, 50*time.Millisecond, "dashboard to answer", func() bool {
		resp, err := http.Get(sys.Addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	beats := watchHeartbeats(t, sys)

	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"TRAWL_AMQP_URL=" + amqpURL,
		"TRAWL_AMQP_PREFIX=" + sys.Topo.Prefix,
		"TRAWL_DELIVERY_LIMIT=" + strconv.Itoa(sys.Topo.DeliveryLimit),
		"TRAWL_ALLOW_PRIVATE_NETWORKS=true",
		"TRAWL_ALLOWED_PORTS=" + site.port,
		"TRAWL_LOG_FORMAT=text",
		"TRAWL_HEARTBEAT_INTERVAL=500ms",
		"TRAWL_SHUTDOWN_TIMEOUT=10s",
		"TRAWL_CRAWLER_CONCURRENCY=4",
		"TRAWL_FETCH_TIMEOUT=5s",
		"TRAWL_HEALTH_ADDR=127.0.0.1:8081", // each namespace has its own loopback
		"GORACE=halt_on_error=1",
	}
	cut := n.startCrawler(t, 0, env)
	other := n.startCrawler(t, 1, env)
	cutID, otherID := cut.workerID(t), other.workerID(t)
	beats.waitFor(t, cutID)
	beats.waitFor(t, otherID)

	id := createTarget(t, sys, map[string]any{"seed_url": site.base + "/", "max_depth": 100, "max_pages": 10000, "per_host_rps": 10})
	testenv.Eventually(t, time.Minute, 50*time.Millisecond, "a third of the crawl", func() bool {
		return site.distinct() >= 50
	})

	n.setLink(t, 0, "down")
	cutAt := time.Now()
	pagesAtCut := site.distinct()
	// The dashboard drops a worker after three missed heartbeats (1.5 s here): the cut-off
	// worker leaves its workers list while the other stays.
	testenv.Eventually(t, 10*time.Second, 100*time.Millisecond, "the dashboard to drop the cut-off worker", func() bool {
		listed := dashboardWorkers(t, sys)
		return !listed[cutID] && listed[otherID]
	})
	// The outage itself, not a wait for a condition: longer than two AMQP heartbeat intervals,
	// so the broker drops the worker's connections and requeues the jobs it held.
	time.Sleep(30*time.Second - time.Since(cutAt))
	n.setLink(t, 0, "up")
	upAt := time.Now()
	back := beats.waitAfter(t, cutID, upAt, 90*time.Second)
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, "the dashboard to list the cut-off worker again", func() bool {
		return dashboardWorkers(t, sys)[cutID]
	})

	sys.WaitDone(id, 3*time.Minute)
	doneAt := time.Now()

	stored := query[string](t, sys.DSN, `SELECT url FROM pages WHERE target_id = $1 ORDER BY url`, id)
	if diff := cmp.Diff(site.expected(), stored); diff != "" {
		t.Errorf("stored pages (-want +got):\n%s", diff)
	}
	// The cut-off worker went silent for the outage (heartbeats already on the wire in its
	// first second may still land) and came back.
	if late := beats.between(cutID, cutAt.Add(time.Second), upAt); len(late) > 0 {
		t.Errorf("heartbeats from the cut-off worker while its link was down: %v", late)
	}
	if beats.between(otherID, cutAt, upAt) == nil {
		t.Error("no heartbeat from the other worker during the outage")
	}
	fetches, distinct := site.totals()
	t.Logf("netns link cut: %d pages stored once each (%d fetched before the cut), %d fetches, %d duplicate fetches; "+
		"outage %s; cut-off worker lost its broker connection %d times; its heartbeat back %s after the link; crawl done %s after the link",
		distinct, pagesAtCut, fetches, fetches-distinct, upAt.Sub(cutAt).Round(time.Millisecond),
		strings.Count(cut.out.String(), "broker connection lost"),
		back.Sub(upAt).Round(time.Millisecond), doneAt.Sub(upAt).Round(time.Millisecond))
}

// netLab is the test's network: two namespaces ("hosts"), each joined to the test by a veth
// pair on its own /24, plus a service address on a separate veth pair.
type netLab struct {
	ns       [2]string
	hostIf   [2]string
	hostAddr [2]string
	nsAddr   [2]string
	dummy    string
	svc      string
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func newNetLab(t *testing.T) *netLab {
	t.Helper()
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	sfx := fmt.Sprintf("%x", rb[:3])
	x, y := 100+int(rb[3])%100, 2*(int(binary.BigEndian.Uint16(rb[1:3]))%100)
	n := &netLab{dummy: "td" + sfx, svc: fmt.Sprintf("10.%d.250.%d", x, 1+y)}

	probe := "trawlt-" + sfx + "-probe"
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("netns test: this machine does not allow network namespaces (%v: %s); skipped", err, bytes.TrimSpace(out))
	}
	_ = exec.Command("ip", "netns", "del", probe).Run()
	// The service address sits on a veth pair of its own, both ends in the test's namespace
	// (no dummy module needed), so cutting a host's link never takes it away.
	ipCmd(t, "link", "add", n.dummy, "type", "veth", "peer", "name", n.dummy+"p")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", n.dummy).Run() })
	ipCmd(t, "addr", "add", n.svc+"/32", "dev", n.dummy)
	ipCmd(t, "link", "set", n.dummy+"p", "up")
	ipCmd(t, "link", "set", n.dummy, "up")

	for i := range 2 {
		side := string(rune('a' + i))
		n.ns[i] = "trawlt-" + sfx + "-" + side
		n.hostIf[i] = "tv" + sfx + side
		nsIf := "tn" + sfx + side
		n.hostAddr[i] = fmt.Sprintf("10.%d.%d.1", x, y+i)
		n.nsAddr[i] = fmt.Sprintf("10.%d.%d.2", x, y+i)
		ipCmd(t, "netns", "add", n.ns[i])
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.ns[i]).Run() })
		ipCmd(t, "link", "add", n.hostIf[i], "type", "veth", "peer", "name", nsIf)
		t.Cleanup(func() { _ = exec.Command("ip", "link", "del", n.hostIf[i]).Run() })
		ipCmd(t, "link", "set", nsIf, "netns", n.ns[i])
		ipCmd(t, "addr", "add", n.hostAddr[i]+"/24", "dev", n.hostIf[i])
		ipCmd(t, "link", "set", n.hostIf[i], "up")
		ipCmd(t, "-n", n.ns[i], "link", "set", "lo", "up")
		ipCmd(t, "-n", n.ns[i], "addr", "add", n.nsAddr[i]+"/24", "dev", nsIf)
		ipCmd(t, "-n", n.ns[i], "link", "set", nsIf, "up")
		// Only the service address is routed: the namespace reaches nothing else.
		ipCmd(t, "-n", n.ns[i], "route", "add", n.svc+"/32", "via", n.hostAddr[i])
	}
	return n
}

// setLink brings host i's link down or up (the test's side of its veth pair).
func (n *netLab) setLink(t *testing.T, i int, state string) {
	t.Helper()
	ipCmd(t, "link", "set", n.hostIf[i], state)
}

// relay listens on the service address and forwards to the broker in amqpURL, returning the
// URL the namespaces use. It stops, with every connection, when the test ends.
func (n *netLab) relay(t *testing.T, amqpURL string) string {
	t.Helper()
	u, err := url.Parse(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(n.svc, "0"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	target := u.Host
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, b)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(b, c); b.Close() })
			wg.Go(func() { _, _ = io.Copy(c, b); c.Close() })
		}
	})
	u.Host = ln.Addr().String()
	return u.String()
}

// nsProc is a binary running inside a namespace.
type nsProc struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (n *netLab) startCrawler(t *testing.T, i int, env []string) *nsProc {
	t.Helper()
	p := &nsProc{out: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command("ip", "netns", "exec", n.ns[i], filepath.Join(harness.BinDir, "crawler"))
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start crawler in %s: %v", n.ns[i], err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("crawler in %s exited with %v:\n%s", n.ns[i], err, p.out.String())
			}
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			t.Errorf("crawler in %s did not stop on SIGTERM:\n%s", n.ns[i], p.out.String())
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("=== crawler in %s:\n%s", n.ns[i], p.out.String())
		}
		if strings.Contains(p.out.String(), "WARNING: DATA RACE") {
			t.Errorf("crawler in %s reported a data race", n.ns[i])
		}
	})
	return p
}

var workerRE = regexp.MustCompile(`worker=(crawler-\S+)`)

// workerID reads the worker id the crawler logs at start.
func (p *nsProc) workerID(t *testing.T) string {
	t.Helper()
	var id string
	testenv.Eventually(t, 30*time.Second, 50*time.Millisecond, "crawler to log its worker id", func() bool {
		if m := workerRE.FindStringSubmatch(p.out.String()); m != nil {
			id = m[1]
			return true
		}
		return false
	})
	return id
}

// heartbeats records every heartbeat on the system's events exchange, with its arrival time:
// what the dashboard's worker list is built from.
type heartbeats struct {
	mu   sync.Mutex
	seen map[string][]time.Time
}

func watchHeartbeats(t *testing.T, sys *System) *heartbeats {
	t.Helper()
	_, raw := testenv.Broker(t)
	ch, err := raw.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "worker.heartbeat.#", sys.Topo.EventsExchange(), false, nil); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &heartbeats{seen: map[string][]time.Time{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for d := range deliveries {
			var hb message.Heartbeat
			if message.Decode(d.Body, message.TypeHeartbeat, &hb) == nil {
				h.mu.Lock()
				h.seen[hb.WorkerID] = append(h.seen[hb.WorkerID], time.Now())
				h.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { ch.Close(); <-done })
	return h
}

func (h *heartbeats) between(id string, from, to time.Time) []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []time.Time
	for _, at := range h.seen[id] {
		if at.After(from) && at.Before(to) {
			out = append(out, at)
		}
	}
	return out
}

func (h *heartbeats) waitFor(t *testing.T, id string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, 50*time.Millisecond, "a heartbeat from "+id, func() bool {
		return len(h.between(id, time.Time{}, time.Now().Add(time.Hour))) > 0
	})
}

// waitAfter waits for a heartbeat from id after from, and returns its arrival time.
func (h *heartbeats) waitAfter(t *testing.T, id string, from time.Time, timeout time.Duration) time.Time {
	t.Helper()
	var at time.Time
	testenv.Eventually(t, timeout, 50*time.Millisecond, "the cut-off worker's heartbeat after the link came back", func() bool {
		if got := h.between(id, from, time.Now().Add(time.Hour)); len(got) > 0 {
			at = got[0]
			return true
		}
		return false
	})
	return at
}

// netSite is a small site served on the service address: pages /p/0../p/{n-1}, each linking
// to a few others (relative links, cycles, duplicates), every page reachable from /.
type netSite struct {
	base, port string
	n          int
	mu         sync.Mutex
	hits       map[string]int
}

func newNetSite(t *testing.T, addr string, pages int) *netSite {
	t.Helper()
	s := &netSite{n: pages, hits: map[string]int{}}
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	_, s.port, _ = net.SplitHostPort(ln.Addr().String())
	s.base = "http://" + ln.Addr().String()
	return s
}

func (s *netSite) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	i := 0
	switch {
	case path == "/":
	case strings.HasPrefix(path, "/p/"):
		v, err := strconv.Atoi(strings.TrimPrefix(path, "/p/"))
		if err != nil || v < 1 || v >= s.n {
			http.NotFound(w, r)
			return
		}
		i = v
	default:
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	s.hits[path]++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!doctype html><title>page %d</title><p>page %d</p>", i, i)
	for _, to := range []int{(i + 1) % s.n, (i * 7) % s.n, (i + s.n/2) % s.n, (i + 1) % s.n} {
		href := "/"
		if to != 0 {
			href = "/p/" + strconv.Itoa(to)
		}
		fmt.Fprintf(w, `<a href="%s">%d</a> <a href="%s#frag">again</a>`, href, to, href)
	}
}

func (s *netSite) expected() []string {
	out := []string{s.base + "/"}
	for i := 1; i < s.n; i++ {
		out = append(out, s.base+"/p/"+strconv.Itoa(i))
	}
	slices.Sort(out)
	return out
}

func (s *netSite) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.hits)
}

// totals returns all fetches and distinct pages fetched.
func (s *netSite) totals() (fetches, distinct int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.hits {
		fetches += n
	}
	return fetches, len(s.hits)
}

// dashboardWorkers returns the ids of the workers the dashboard's /api/workers lists now.
func dashboardWorkers(t *testing.T, sys *System) map[string]bool {
	t.Helper()
	var out struct {
		Workers []struct {
			WorkerID string `json:"worker_id"`
		} `json:"workers"`
	}
	sys.API(http.MethodGet, "/api/workers", nil, &out)
	ids := map[string]bool{}
	for _, w := range out.Workers {
		ids[w.WorkerID] = true
	}
	return ids
}
