package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Stage is a component's place in the shutdown order. A worker's components stop stage by
// stage, in the order the constants are declared (docs/adr/0049-one-worker-lifecycle.md):
//
//  1. StageWork: the stop context its runners were given ends: consumers cancel their
//     subscriptions and loops start nothing new (intake stops). The lifecycle then waits for them
//     to finish what they hold, which they do under Work(): it ends the shutdown timeout after
//     the stop, cutting off work that takes longer. A runner returns once it has settled what it
//     took: its results are published and confirmed, its deliveries acked or returned.
//  2. StageFlush: publishers and RPC clients close, once nothing is left to publish through them.
//  3. StageBroker: the RabbitMQ connections close.
//  4. StageDatabase: the PostgreSQL pool closes.
//  5. StageTelemetry: the health and metrics servers stop last, so that until the end a probe
//     gets an answer (/readyz: not ready, the process is stopping) and a scrape gets figures.
//
// Within a stage, runners are stopped together and Stop functions are called in the reverse of
// the order their components started, as deferred calls are.
type Stage int

const (
	StageWork Stage = iota
	StageFlush
	StageBroker
	StageDatabase
	StageTelemetry
	numStages
)

var stageNames = [numStages]string{"work", "flush", "broker", "database", "telemetry"}

func (s Stage) String() string {
	if s < 0 || s >= numStages {
		return fmt.Sprintf("Stage(%d)", int(s))
	}
	return stageNames[s]
}

// Component is one part of a worker process: a resource it opens and closes, a loop it runs, or
// both. Every field but Name and Stage may be nil.
type Component struct {
	Name  string
	Stage Stage
	// Start prepares the component: it dials, opens, declares. It returns once that is done or
	// ctx ends (the process is asked to stop while starting, or a runner has failed).
	Start func(ctx context.Context) error
	// Run runs the component, in a goroutine the lifecycle owns, until ctx ends: the stop of its
	// stage. An error stops the process (Wait returns it); nil when ctx ends.
	Run func(ctx context.Context) error
	// Stop releases what Start acquired. It must be bounded by itself (closes on a blocked broker
	// are); the lifecycle also gives up on it after the stop bound (Lifecycle.StopBound).
	Stop func() error
}

// ErrStopping is what a readiness check wrapped by Ready reports once shutdown has begun, and
// what Start returns then.
var ErrStopping = errors.New("shutting down")

// DefaultStopBound is Lifecycle.StopBound when NewLifecycle sets it.
const DefaultStopBound = 15 * time.Second

// Lifecycle starts a worker's components in the order it is given them and stops them in the
// order of their stages (Stage): written once here for the crawler, the processor and the
// dashboard (river's startstop and asynq's Server.Shutdown are the models).
//
// Start order: each binary starts what others depend on first, so that a component's Start can
// use what came before it: the database, the broker and its publishers, the health and metrics
// servers, then the background loops and heartbeats, and the consumers last, when everything
// they hand work to is running. (The dashboard starts its web server first, to say it is starting
// while the database is unreachable; the server is its intake, so it is in StageWork.)
//
// A failing Start stops everything started before it, in the shutdown order. Shutdown begins
// when the context given to NewLifecycle ends (SIGTERM), when a runner fails, or when Stop is
// called.
type Lifecycle struct {
	// StopBound bounds, after the shutdown timeout, the wait for the runners of each stage and
	// for each Stop function: one that takes longer is reported (Stop's error) and left behind,
	// so that the process still exits. Set it before the first Start.
	StopBound time.Duration

	log        *slog.Logger
	parent     context.Context
	stageCtx   [numStages]context.Context
	stageStop  [numStages]context.CancelFunc
	work       context.Context
	cancelWork context.CancelFunc

	stopping atomic.Bool
	comps    []*component // started, in start order; only the caller's goroutine touches it

	mu     sync.Mutex
	failed []error // runners' errors

	once   sync.Once
	result error
}

type component struct {
	Component
	done chan struct{} // closed when Run has returned (at once without Run)
}

// NewLifecycle returns a lifecycle that begins its shutdown when ctx ends, and lets in-flight
// work finish for up to shutdownTimeout (TRAWL_SHUTDOWN_TIMEOUT) after it.
func NewLifecycle(ctx context.Context, shutdownTimeout time.Duration, log *slog.Logger) *Lifecycle {
	l := &Lifecycle{StopBound: DefaultStopBound, log: log, parent: ctx}
	for s := range numStages {
		if s == StageWork {
			l.stageCtx[s], l.stageStop[s] = context.WithCancel(ctx)
			continue
		}
		l.stageCtx[s], l.stageStop[s] = context.WithCancel(context.WithoutCancel(ctx))
	}
	l.work, l.cancelWork = WorkContext(l.stageCtx[StageWork], shutdownTimeout)
	return l
}

// Work is the context for work under way: it ends the shutdown timeout after the stop of
// StageWork, so that SIGTERM lets in-flight fetches, batches and scheduler rounds finish.
func (l *Lifecycle) Work() context.Context { return l.work }

// Stopping reports whether shutdown has begun.
func (l *Lifecycle) Stopping() bool { return l.stopping.Load() }

// Start starts each component in turn: its Start, then its Run in a goroutine. When a Start
// fails, Start stops every component started before it, in the shutdown order, and returns the
// error; the caller returns Stop(err), which reports the outcome. After shutdown has begun it
// starts nothing and returns ErrStopping.
func (l *Lifecycle) Start(cs ...Component) error {
	for _, c := range cs {
		if l.Stopping() {
			return ErrStopping
		}
		if c.Stage < 0 || c.Stage >= numStages {
			panic(fmt.Sprintf("service: component %s: no stage %d", c.Name, c.Stage))
		}
		if c.Start != nil {
			if err := c.Start(l.stageCtx[StageWork]); err != nil {
				_ = l.Stop(err)
				return err
			}
		}
		rc := &component{Component: c, done: make(chan struct{})}
		l.comps = append(l.comps, rc)
		if c.Run == nil {
			close(rc.done)
			continue
		}
		ctx := l.stageCtx[c.Stage]
		go func() {
			defer close(rc.done)
			if err := c.Run(ctx); err != nil {
				l.fail(err)
			}
		}()
	}
	return nil
}

// Go starts run as a component of stage with no Start or Stop.
func (l *Lifecycle) Go(name string, stage Stage, run func(ctx context.Context) error) {
	_ = l.Start(Component{Name: name, Stage: stage, Run: run})
}

// OnStop has stop called in stage's turn at shutdown (a component with only a Stop).
func (l *Lifecycle) OnStop(name string, stage Stage, stop func() error) {
	_ = l.Start(Component{Name: name, Stage: stage, Stop: stop})
}

// Open starts a resource component: open runs now, as its Start, and close in stage's turn at
// shutdown. It returns what open returned; after an error the caller returns l.Stop(err).
func Open[T any](l *Lifecycle, name string, stage Stage, open func(context.Context) (T, error), close func(T)) (T, error) {
	var v T
	err := l.Start(Component{Name: name, Stage: stage,
		Start: func(ctx context.Context) (err error) {
			v, err = open(ctx)
			return err
		},
		Stop: func() error {
			close(v)
			return nil
		},
	})
	return v, err
}

// fail records a runner's error and begins the shutdown.
func (l *Lifecycle) fail(err error) {
	l.mu.Lock()
	l.failed = append(l.failed, err)
	l.mu.Unlock()
	l.stageStop[StageWork]()
}

// Wait blocks until shutdown begins (ctx ends or a runner fails), then stops every component and
// returns what Stop(nil) returns.
func (l *Lifecycle) Wait() error {
	<-l.stageCtx[StageWork].Done()
	return l.Stop(nil)
}

// Stop stops every component started, stage by stage (Stage), once; later calls return what the
// first returned. The result joins cause, the errors runners returned and the components that
// did not stop within their bound. When the process was asked to stop (the context given to
// NewLifecycle ended), cause is left out: a Start cut short by SIGTERM is a clean stop.
func (l *Lifecycle) Stop(cause error) error {
	l.once.Do(func() { l.result = l.shutdown(cause) })
	return l.result
}

func (l *Lifecycle) shutdown(cause error) error {
	asked := l.parent.Err() != nil
	l.stopping.Store(true)
	var late []error
	for s := range numStages {
		l.stageStop[s]()
		bound := l.StopBound
		if s == StageWork {
			// In-flight work has the shutdown timeout, then the bound to return once cut off.
			late = append(late, l.awaitRunners(s, l.work.Done(), bound)...)
			l.cancelWork()
		} else {
			late = append(late, l.awaitRunners(s, nil, bound)...)
		}
		late = append(late, l.callStops(s, bound)...)
	}
	l.mu.Lock()
	errs := slices.Clone(l.failed)
	l.mu.Unlock()
	if asked {
		cause = nil
	}
	return errors.Join(append(append([]error{cause}, errs...), late...)...)
}

// awaitRunners waits for the runners of stage s to return: for bound after after is closed (at
// once when after is nil). It reports those that did not.
func (l *Lifecycle) awaitRunners(s Stage, after <-chan struct{}, bound time.Duration) []error {
	var runners []*component
	for _, c := range l.comps {
		if c.Stage == s && c.Run != nil {
			runners = append(runners, c)
		}
	}
	if len(runners) == 0 {
		return nil
	}
	all := make(chan struct{})
	go func() {
		for _, c := range runners {
			<-c.done
		}
		close(all)
	}()
	if after != nil {
		select {
		case <-all:
			return nil
		case <-after:
		}
	}
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case <-all:
		return nil
	case <-t.C:
	}
	var late []error
	for _, c := range runners {
		select {
		case <-c.done:
		default:
			late = append(late, l.late(c, bound))
		}
	}
	return late
}

// callStops calls the Stop functions of stage s, last started first, each bounded.
func (l *Lifecycle) callStops(s Stage, bound time.Duration) []error {
	var late []error
	for _, c := range slices.Backward(l.comps) {
		if c.Stage != s || c.Stop == nil {
			continue
		}
		done := make(chan error, 1)
		go func() { done <- c.Stop() }()
		t := time.NewTimer(bound)
		select {
		case err := <-done:
			if err != nil {
				l.log.Warn("component did not stop cleanly", "component", c.Name, "stage", s.String(), "err", err)
			}
		case <-t.C:
			late = append(late, l.late(c, bound))
		}
		t.Stop()
	}
	return late
}

func (l *Lifecycle) late(c *component, bound time.Duration) error {
	l.log.Error("component did not stop in time; leaving it", "component", c.Name, "stage", c.Stage.String(), "bound", bound.String())
	return fmt.Errorf("service: %s did not stop within %s", c.Name, bound)
}

// Ready wraps checks so that each fails with ErrStopping once shutdown has begun: /readyz says
// the process is not ready while it drains, as it did when the health server stopped first.
func (l *Lifecycle) Ready(checks map[string]Check) map[string]Check {
	out := make(map[string]Check, len(checks))
	for name, check := range checks {
		out[name] = func(ctx context.Context) error {
			if l.Stopping() {
				return ErrStopping
			}
			return check(ctx)
		}
	}
	return out
}
