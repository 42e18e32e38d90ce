// Package harness runs the real Trawl binaries as processes for end-to-end, chaos and browser
// tests: each System has its own database and broker name prefix, and every process it starts
// is stopped (SIGTERM, then checked for a clean exit) when the test ends.
package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/test/testenv"
)

// BinDir holds the binaries built by Build.
var BinDir string

// Build compiles the three binaries into a temporary directory (with -race when race is true)
// and sets BinDir. Call it from TestMain; the returned function removes the directory.
func Build(race bool) (cleanup func(), err error) { return BuildTags(race) }

// BuildTags is Build with build tags: chaos tests build with "failpoint" (package
// internal/failpoint) so that TRAWL_FAILPOINTS can stop a worker at a chosen point.
func BuildTags(race bool, tags ...string) (cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "trawl-bin-")
	if err != nil {
		return nil, err
	}
	args := []string{"build", "-o", dir + "/"}
	if race {
		args = append(args, "-race")
	}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	args = append(args, "github.com/trawlhq/trawl/cmd/crawler", "github.com/trawlhq/trawl/cmd/processor", "github.com/trawlhq/trawl/cmd/dashboard")
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("build binaries: %w", err)
	}
	BinDir = dir
	return func() { os.RemoveAll(dir) }, nil
}

// Proc is one running binary.
type Proc struct {
	Name       string
	HealthAddr string
	cmd        *exec.Cmd
	out        *testenv.SyncBuffer
	done       chan error
	killed     bool
}

// System is an isolated Trawl installation: its own database and broker prefix.
type System struct {
	t       *testing.T
	DSN     string
	Topo    pipeline.Topology
	env     []string
	procs   []*Proc
	Addr    string // dashboard base URL
	counter int
}

// NewSystem prepares a migrated database and a broker prefix on the shared test services; start
// processes with Start or StartAll. extraEnv is added to every process's environment.
func NewSystem(t *testing.T, extraEnv ...string) *System {
	t.Helper()
	_, dsn := testenv.Store(t)
	return NewSystemOn(t, dsn, extraEnv...)
}

// NewSystemOn is NewSystem on a database the caller provides (a copy of a seeded one, say),
// which must be migrated; the broker prefix is the test's own.
func NewSystemOn(t *testing.T, dsn string, extraEnv ...string) *System {
	t.Helper()
	topo, _ := testenv.Broker(t)
	return NewSystemAt(t, dsn, testenv.AMQPURL(), topo, extraEnv...)
}

// NewSystemAt is NewSystem for services the caller provides (a private broker node, say): dsn
// must be migrated and topo's prefix unused.
func NewSystemAt(t *testing.T, dsn, amqpURL string, topo pipeline.Topology, extraEnv ...string) *System {
	t.Helper()
	s := &System{t: t, DSN: dsn, Topo: topo}
	s.env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"TRAWL_DATABASE_URL=" + dsn,
		"TRAWL_AMQP_URL=" + amqpURL,
		"TRAWL_AMQP_PREFIX=" + topo.Prefix,
		fmt.Sprintf("TRAWL_DELIVERY_LIMIT=%d", topo.DeliveryLimit),
		"TRAWL_ALLOW_PRIVATE_NETWORKS=true",
		"TRAWL_LOG_FORMAT=text",
		"TRAWL_LOG_LEVEL=info",
		"TRAWL_HEARTBEAT_INTERVAL=500ms",
		"TRAWL_RETRY_BASE=100ms",
		"TRAWL_RETRY_MAX=1s",
		"TRAWL_SCHEDULER_INTERVAL=50ms",
		"TRAWL_SHUTDOWN_TIMEOUT=10s",
		"GORACE=halt_on_error=1",
	}, extraEnv...)
	t.Cleanup(s.stopAll)
	return s
}

// FreeAddr returns a free loopback address.
func FreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Start runs a binary with the system's environment plus env.
func (s *System) Start(bin string, args []string, env ...string) *Proc {
	s.t.Helper()
	s.counter++
	p := &Proc{Name: fmt.Sprintf("%s-%d", bin, s.counter), HealthAddr: FreeAddr(s.t), out: &testenv.SyncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(filepath.Join(BinDir, bin), args...)
	p.cmd.Env = append(append(append([]string{}, s.env...), "TRAWL_HEALTH_ADDR="+p.HealthAddr), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", bin, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	s.procs = append(s.procs, p)
	return p
}

// StartAll starts a dashboard and the given numbers of crawlers and processors, and returns
// the workers.
func (s *System) StartAll(crawlers, processors int) (workers []*Proc) {
	s.t.Helper()
	addr := FreeAddr(s.t)
	s.Start("dashboard", nil, "TRAWL_DASHBOARD_ADDR="+addr)
	s.Addr = "http://" + addr
	for range crawlers {
		workers = append(workers, s.Start("crawler", nil, "TRAWL_CRAWLER_CONCURRENCY=16"))
	}
	for range processors {
		workers = append(workers, s.Start("processor", nil))
	}
	testenv.Eventually(s.t, 30*time.Second, 50*time.Millisecond, "dashboard to answer", func() bool {
		resp, err := http.Get(s.Addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return workers
}

// Procs returns every process the system has started, running or not, in start order.
func (s *System) Procs() []*Proc { return slices.Clone(s.procs) }

// Kill sends SIGKILL to p: no cleanup, no goodbye, as in a crash.
func (s *System) Kill(p *Proc) {
	s.t.Helper()
	p.killed = true
	_ = p.cmd.Process.Kill()
	err := <-p.done
	p.done <- err
}

// Exited reports whether p has exited.
func (p *Proc) Exited() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return true
	default:
		return false
	}
}

// PID is p's process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Signal sends sig to p.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits up to timeout for p to exit and returns its exit status (-1 when a signal ended
// it); ok is false if p is still running after timeout.
func (p *Proc) Wait(timeout time.Duration) (code int, ok bool) {
	select {
	case err := <-p.done:
		p.done <- err
		return p.cmd.ProcessState.ExitCode(), true
	case <-time.After(timeout):
		return 0, false
	}
}

// Output returns what p has printed so far.
func (p *Proc) Output() string { return p.out.String() }

// Stop sends SIGTERM and waits; it fails the test unless the process exits 0 in time.
func (s *System) Stop(p *Proc, timeout time.Duration) {
	s.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		switch {
		case err == nil || p.killed:
		case diedOfSIGTERM(p.cmd.ProcessState):
			// The binaries catch SIGTERM first thing in main, so only a process that had not
			// reached main yet dies of it: it was still starting and had done nothing.
			s.t.Logf("%s was stopped while still starting (before main caught SIGTERM)", p.Name)
		default:
			s.t.Errorf("%s exited with %v; output:\n%s", p.Name, err, testenv.Tail(p.out.String(), 60))
		}
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		s.t.Errorf("%s did not exit within %s of SIGTERM; output:\n%s", p.Name, timeout, testenv.Tail(p.out.String(), 60))
	}
}

// diedOfSIGTERM reports whether a process was ended by SIGTERM's default action.
func diedOfSIGTERM(ps *os.ProcessState) bool {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM
}

func (s *System) stopAll() {
	for _, p := range s.procs {
		if !p.Exited() && !p.killed {
			s.Stop(p, 20*time.Second)
		}
	}
	if s.t.Failed() || testing.Verbose() {
		for _, p := range s.procs {
			s.t.Logf("=== %s output:\n%s", p.Name, testenv.Tail(p.out.String(), 40))
		}
	}
	for _, p := range s.procs {
		if strings.Contains(p.out.String(), "WARNING: DATA RACE") {
			s.t.Errorf("%s reported a data race:\n%s", p.Name, p.out.String())
		}
	}
}

// API calls the dashboard's JSON API and decodes the answer into out (if not nil).
func (s *System) API(method, path string, body any, out any) int {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, s.Addr+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			s.t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// TargetStatus is GET /api/targets/{id}.
type TargetStatus struct {
	ID         int64  `json:"id"`
	State      string `json:"state"`
	Discovered int64  `json:"discovered"`
	Fetched    int64  `json:"fetched"`
	Failed     int64  `json:"failed"`
	Pending    int64  `json:"pending"`
}

// WaitDone polls the target until it is done and returns its last status.
func (s *System) WaitDone(id int64, timeout time.Duration) TargetStatus {
	s.t.Helper()
	var st TargetStatus
	deadline := time.Now().Add(timeout)
	for {
		s.API(http.MethodGet, fmt.Sprintf("/api/targets/%d", id), nil, &st)
		if st.State == "done" {
			return st
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out after %s waiting for target %d to finish: %+v\n%s", timeout, id, st, s.unfinished(id))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// unfinished describes what keeps a target from finishing: its URLs that are not final, and the
// dead letters, for the failure message of WaitDone.
func (s *System) unfinished(id int64) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.DSN)
	if err != nil {
		return "(database: " + err.Error() + ")"
	}
	defer c.Close(ctx)
	var b strings.Builder
	rows, err := c.Query(ctx, `SELECT id, url, state, attempts, coalesce(lease_until::text, '-'), next_attempt_at::text
		FROM urls WHERE target_id = $1 AND state NOT IN ('done', 'failed', 'cancelled') ORDER BY id LIMIT 20`, id)
	if err != nil {
		return "(urls: " + err.Error() + ")"
	}
	for rows.Next() {
		var uid int64
		var u, state, lease, next string
		var attempts int
		if err := rows.Scan(&uid, &u, &state, &attempts, &lease, &next); err != nil {
			return "(urls: " + err.Error() + ")"
		}
		fmt.Fprintf(&b, "url %d %s: %s, attempts %d, lease until %s, next attempt %s\n", uid, u, state, attempts, lease, next)
	}
	if err := rows.Err(); err != nil {
		return "(urls: " + err.Error() + ")"
	}
	var dead int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM dead_letters`).Scan(&dead); err == nil {
		fmt.Fprintf(&b, "dead letters: %d\n", dead)
	}
	return b.String()
}
