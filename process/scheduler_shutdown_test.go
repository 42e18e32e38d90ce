package process_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/trawlhq/trawl/process"
	"github.com/trawlhq/trawl/service"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/test/testenv"
)

// slowAnswer is a frontier whose first non-empty dispatch commits its leases and then answers
// only after the test has ended the scheduler's context, as a database answer can arrive after a
// SIGTERM: the answer is an error if the context it was asked under has ended by then.
type slowAnswer struct {
	*store.Store
	committed chan struct{}
	answer    chan struct{}
	once      sync.Once
}

func (f *slowAnswer) Dispatch(ctx context.Context, lim store.DispatchLimits) ([]store.Job, error) {
	jobs, err := f.Store.Dispatch(context.WithoutCancel(ctx), lim)
	if err != nil || len(jobs) == 0 {
		return jobs, err
	}
	f.once.Do(func() {
		close(f.committed)
		<-f.answer
	})
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return jobs, nil
}

// TestSchedulerFinishesItsRoundAfterShutdown: a SIGTERM (the context ending) while a dispatch is
// under way must not leave the leased URLs without a published job until their lease expires:
// the round finishes under the work context and publishes them.
func TestSchedulerFinishesItsRoundAfterShutdown(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, "shutdown")
	f := &slowAnswer{Store: fx.s, committed: make(chan struct{}), answer: make(chan struct{})}
	sched := &process.Scheduler{Frontier: f, Pub: fx.pub, Topology: fx.topo, Interval: 10 * time.Millisecond, Log: testenv.Logger(t),
		Limits: store.DispatchLimits{MaxInFlight: 10, HostMaxInFlight: 10, Hosts: 10, Lease: time.Hour}}
	ctx, cancel := context.WithCancel(t.Context())
	work, cancelWork := service.WorkContext(ctx, 5*time.Second) // as the processor runs it
	defer cancelWork()
	var wg sync.WaitGroup
	wg.Go(func() { sched.Run(ctx, work) })
	select {
	case <-f.committed:
	case <-time.After(10 * time.Second):
		t.Fatal("no dispatch")
	}
	cancel()
	close(f.answer)
	wg.Wait()
	if d := testenv.QueueDepth(t, fx.raw, fx.topo.CrawlQueue()); d != 1 {
		t.Fatalf("crawl queue holds %d jobs after the shutdown, want the seed's: its URL stays leased for an hour", d)
	}
}
