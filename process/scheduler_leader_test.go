package process_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trawlhq/trawl/process"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/test/testenv"
)

// switchLeader is a Leader whose answer the test sets.
type switchLeader struct{ leads atomic.Bool }

func (l *switchLeader) Leading() bool { return l.leads.Load() }

// A scheduler that does not lead dispatches nothing, however often it is woken; once it leads it
// dispatches on its next tick.
func TestStandbySchedulerDispatchesNothing(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, "leader")
	leader := &switchLeader{}
	sched := &process.Scheduler{Frontier: fx.s, Pub: fx.pub, Topology: fx.topo, Interval: 10 * time.Millisecond, Log: testenv.Logger(t),
		Limits: store.DispatchLimits{MaxInFlight: 10, HostMaxInFlight: 10, Hosts: 10, Lease: time.Minute}, Leader: leader}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { sched.Run(ctx, ctx) })
	defer func() { cancel(); wg.Wait() }()

	for range 30 {
		sched.Wake()
		time.Sleep(10 * time.Millisecond)
	}
	if d := testenv.QueueDepth(t, fx.raw, fx.topo.CrawlQueue()); d != 0 {
		t.Fatalf("a standby scheduler dispatched %d jobs", d)
	}
	leader.leads.Store(true)
	testenv.Eventually(t, 5*time.Second, 10*time.Millisecond, "the new leader to dispatch the seed", func() bool {
		return testenv.QueueDepth(t, fx.raw, fx.topo.CrawlQueue()) == 1
	})
}
