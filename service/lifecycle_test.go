package service

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/metrics"
	"github.com/trawlhq/trawl/test/harness"
)

// journal records what components do, in order, from any goroutine.
type journal struct {
	mu     sync.Mutex
	events []string
}

func (j *journal) add(e string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, e)
}

func (j *journal) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.events...)
}

// resource is a component that records its start and its stop.
func (j *journal) resource(name string, stage Stage) Component {
	return Component{Name: name, Stage: stage,
		Start: func(context.Context) error { j.add("start " + name); return nil },
		Stop:  func() error { j.add("stop " + name); return nil },
	}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestLifecycleOrder: components start in the order given, and stop stage by stage: work
// (intake first, then in-flight work, which may still run under Work()), flush, broker,
// database, telemetry, whatever the order they started in.
func TestLifecycleOrder(t *testing.T) {
	t.Parallel()
	ctx, sigterm := context.WithCancel(t.Context())
	lc := NewLifecycle(ctx, time.Minute, quiet())
	var j journal
	running := make(chan struct{})
	// Started in an order that is not the reverse of the stages', to tell the two apart.
	err := lc.Start(
		j.resource("publisher", StageFlush),
		j.resource("database", StageDatabase),
		j.resource("broker", StageBroker),
		j.resource("rpc replies", StageFlush),
		Component{Name: "health", Stage: StageTelemetry, Run: func(ctx context.Context) error {
			<-ctx.Done()
			j.add("health stopped")
			return nil
		}},
		Component{Name: "consumer", Stage: StageWork, Run: func(stop context.Context) error {
			close(running)
			<-stop.Done()
			j.add("intake stopped")
			// In-flight work goes on: Work() has not ended, and the process is not ready.
			if lc.Work().Err() != nil {
				t.Error("Work() ended with the stop, before the shutdown timeout")
			}
			if err := lc.Ready(map[string]Check{"x": func(context.Context) error { return nil }})["x"](t.Context()); !errors.Is(err, ErrStopping) {
				t.Errorf("readiness while draining = %v, want ErrStopping", err)
			}
			j.add("in-flight work finished")
			return nil
		}},
	)
	if err != nil {
		t.Fatal(err)
	}
	<-running
	if err := lc.Ready(map[string]Check{"x": func(context.Context) error { return nil }})["x"](t.Context()); err != nil {
		t.Errorf("readiness before the stop = %v", err)
	}
	sigterm()
	if err := lc.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	want := []string{
		"start publisher", "start database", "start broker", "start rpc replies",
		"intake stopped", "in-flight work finished",
		"stop rpc replies", "stop publisher", // flush: last started first
		"stop broker",
		"stop database",
		"health stopped",
	}
	if diff := cmp.Diff(want, j.get()); diff != "" {
		t.Errorf("lifecycle order (-want +got):\n%s", diff)
	}
	if lc.Work().Err() == nil {
		t.Error("Work() still live after the lifecycle stopped")
	}
	if err := lc.Start(j.resource("late", StageBroker)); !errors.Is(err, ErrStopping) {
		t.Errorf("Start after the stop = %v, want ErrStopping", err)
	}
}

// TestLifecycleFailedStartStopsWhatStarted: a Start that fails stops the components started
// before it, in the shutdown order, and its own Stop is not called.
func TestLifecycleFailedStartStopsWhatStarted(t *testing.T) {
	t.Parallel()
	lc := NewLifecycle(t.Context(), time.Minute, quiet())
	var j journal
	if err := lc.Start(j.resource("database", StageDatabase), j.resource("broker", StageBroker)); err != nil {
		t.Fatal(err)
	}
	lc.Go("heartbeats", StageWork, func(stop context.Context) error {
		<-stop.Done()
		j.add("heartbeats stopped")
		return nil
	})
	boom := errors.New("schema too old")
	failing := j.resource("schema", StageWork)
	failing.Start = func(context.Context) error { return boom }
	err := lc.Start(failing, j.resource("never", StageFlush))
	if !errors.Is(err, boom) {
		t.Fatalf("Start = %v, want %v", err, boom)
	}
	// Start has already stopped the others; Stop reports the outcome.
	want := []string{"start database", "start broker", "heartbeats stopped", "stop broker", "stop database"}
	if diff := cmp.Diff(want, j.get()); diff != "" {
		t.Errorf("after a failed start (-want +got):\n%s", diff)
	}
	if err := lc.Stop(err); !errors.Is(err, boom) {
		t.Errorf("Stop = %v, want %v", err, boom)
	}
	if diff := cmp.Diff(want, j.get()); diff != "" {
		t.Errorf("Stop stopped something twice (-want +got):\n%s", diff)
	}
}

// TestLifecycleStopWhileStartingIsClean: a Start cut short because the process was asked to
// stop is a clean exit (SIGTERM while waiting for the database); a runner's failure that cut it
// short is reported.
func TestLifecycleStopWhileStartingIsClean(t *testing.T) {
	t.Parallel()
	waitDB := Component{Name: "database", Stage: StageDatabase, Start: func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}}

	ctx, sigterm := context.WithCancel(t.Context())
	lc := NewLifecycle(ctx, time.Minute, quiet())
	sigterm()
	err := lc.Start(waitDB)
	if err == nil {
		t.Fatal("Start of a database that never answers succeeded")
	}
	if err := lc.Stop(err); err != nil {
		t.Errorf("Stop after SIGTERM while starting = %v, want nil", err)
	}

	lc = NewLifecycle(t.Context(), time.Minute, quiet())
	listen := errors.New("listen :8080: address already in use")
	lc.Go("web server", StageWork, func(context.Context) error { return listen })
	err = lc.Start(waitDB)
	if err := lc.Stop(err); !errors.Is(err, listen) || !errors.Is(err, context.Canceled) {
		t.Errorf("Stop after the server failed while starting = %v, want both errors", err)
	}
}

// TestLifecycleRunnerFailureStops: a runner that fails begins the shutdown, and Wait returns
// its error once every component has stopped.
func TestLifecycleRunnerFailureStops(t *testing.T) {
	t.Parallel()
	lc := NewLifecycle(t.Context(), time.Minute, quiet())
	var j journal
	if err := lc.Start(j.resource("broker", StageBroker)); err != nil {
		t.Fatal(err)
	}
	lc.Go("other consumer", StageWork, func(stop context.Context) error {
		<-stop.Done()
		j.add("other consumer stopped")
		return nil
	})
	lost := errors.New("consumer: channel closed")
	lc.Go("consumer", StageWork, func(context.Context) error { return lost })
	if err := lc.Wait(); !errors.Is(err, lost) {
		t.Fatalf("Wait = %v, want %v", err, lost)
	}
	want := []string{"start broker", "other consumer stopped", "stop broker"}
	if diff := cmp.Diff(want, j.get()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestLifecycleInFlightWorkIsCutOffAtTheShutdownTimeout: work that outlasts the shutdown timeout
// is cut off (Work() ends), and the stages after it still run once it has returned.
func TestLifecycleInFlightWorkIsCutOffAtTheShutdownTimeout(t *testing.T) {
	t.Parallel()
	ctx, sigterm := context.WithCancel(t.Context())
	lc := NewLifecycle(ctx, 20*time.Millisecond, quiet())
	var j journal
	if err := lc.Start(j.resource("broker", StageBroker)); err != nil {
		t.Fatal(err)
	}
	lc.Go("slow fetch", StageWork, func(context.Context) error {
		<-lc.Work().Done() // a fetch that only its context ends
		j.add("fetch cut off")
		return nil
	})
	sigterm()
	if err := lc.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if diff := cmp.Diff([]string{"start broker", "fetch cut off", "stop broker"}, j.get()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestLifecycleStopPastItsBoundIsLeftBehind: a Stop, or a runner, that does not return within
// the stop bound is reported and left behind, and the later stages still stop, so that the
// process exits (a close handshake the broker never answers).
func TestLifecycleStopPastItsBoundIsLeftBehind(t *testing.T) {
	t.Parallel()
	ctx, sigterm := context.WithCancel(t.Context())
	lc := NewLifecycle(ctx, 10*time.Millisecond, quiet())
	lc.StopBound = 20 * time.Millisecond
	var j journal
	release := make(chan struct{})
	var stuck sync.WaitGroup // the test owns what the lifecycle left behind
	stuck.Add(2)
	if err := lc.Start(j.resource("database", StageDatabase), Component{Name: "blocked broker", Stage: StageBroker,
		Stop: func() error {
			defer stuck.Done()
			<-release
			return nil
		}}); err != nil {
		t.Fatal(err)
	}
	lc.Go("deaf consumer", StageWork, func(context.Context) error {
		defer stuck.Done()
		<-release // ignores both the stop and Work()
		return nil
	})
	sigterm()
	err := lc.Wait()
	close(release)
	stuck.Wait()
	for _, name := range []string{"blocked broker", "deaf consumer"} {
		if err == nil || !strings.Contains(err.Error(), name+" did not stop within 20ms") {
			t.Errorf("Wait = %v, want it to name %s", err, name)
		}
	}
	if diff := cmp.Diff([]string{"start database", "stop database"}, j.get()); diff != "" {
		t.Errorf("the database was not closed after the broker overran (-want +got):\n%s", diff)
	}
}

// TestServeHealthNotReadyWhileStopping: the health server answers until the very end; /readyz
// fails from the moment shutdown begins, while in-flight work drains.
func TestServeHealthNotReadyWhileStopping(t *testing.T) {
	t.Parallel()
	addr := harness.FreeAddr(t)
	ctx, sigterm := context.WithCancel(t.Context())
	lc := NewLifecycle(ctx, time.Minute, quiet())
	lc.ServeHealth(Common{}, addr, map[string]Check{"broker": func(context.Context) error { return nil }}, metrics.New(metrics.Crawler, "v-test"))
	get := func(path string) (int, error) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	waitStatus(t, "http://"+addr+"/readyz", http.StatusOK)
	draining, drained := make(chan struct{}), make(chan struct{})
	lc.Go("consumer", StageWork, func(stop context.Context) error {
		<-stop.Done()
		close(draining)
		<-drained
		return nil
	})
	sigterm()
	waited := make(chan error, 1)
	go func() { waited <- lc.Wait() }()
	<-draining
	for path, want := range map[string]int{"/healthz": http.StatusOK, "/readyz": http.StatusServiceUnavailable, "/metrics": http.StatusOK} {
		if code, err := get(path); err != nil || code != want {
			t.Errorf("%s while draining = %d %v, want %d", path, code, err, want)
		}
	}
	close(drained)
	if err := <-waited; err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if _, err := get("/healthz"); err == nil {
		t.Error("the health server still answers after the lifecycle stopped")
	}
}

// waitStatus polls url until it answers with status, for up to 10 seconds.
func waitStatus(t *testing.T, url string, status int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == status {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered %d: %v", url, status, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
