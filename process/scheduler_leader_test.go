package process_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trawlhq/trawl/internal/testenv"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/process"
	"github.com/trawlhq/trawl/store"
)

// switchLeader is a Leader whose answer the test sets.
type switchLeader struct{ leads atomic.Bool }

func (l *switchLeader) Leading() bool { return l.leads.Load() }

// A scheduler that does not lead dispatches nothing, however often it is woken; once it leads it
// dispatches on its next tick.
func TestStandbySchedulerDispatchesNothing(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	topo, raw := testenv.Broker(t)
	conn := testenv.Dial(t, "sched-leader-test")
	pub := pipeline.NewPublisher(conn, testenv.Logger(t))
	defer pub.Close()
	if _, err := s.CreateTarget(t.Context(), store.NewTarget{Name: "l", SeedURL: "http://leader.test/", SeedHost: "leader.test",
		Scope: "host", MaxDepth: 1, MaxPages: 10, MaxAttempts: 2}); err != nil {
		t.Fatal(err)
	}
	leader := &switchLeader{}
	sched := &process.Scheduler{Frontier: s, Pub: pub, Topology: topo, Interval: 10 * time.Millisecond, Log: testenv.Logger(t),
		Limits: store.DispatchLimits{MaxInFlight: 10, HostMaxInFlight: 10, Hosts: 10, Lease: time.Minute}, Leader: leader}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { sched.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	for range 30 {
		sched.Wake()
		time.Sleep(10 * time.Millisecond)
	}
	if d := testenv.QueueDepth(t, raw, topo.CrawlQueue()); d != 0 {
		t.Fatalf("a standby scheduler dispatched %d jobs", d)
	}
	leader.leads.Store(true)
	testenv.Eventually(t, 5*time.Second, 10*time.Millisecond, "the new leader to dispatch the seed", func() bool {
		return testenv.QueueDepth(t, raw, topo.CrawlQueue()) == 1
	})
}
