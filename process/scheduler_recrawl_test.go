package process_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/process"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

// A done target with a recrawl interval is queued again by the scheduler once the interval has
// passed, and its URLs are dispatched to the crawl queue with their ETag.
func TestSchedulerRecrawlsOnInterval(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	topo, raw := testenv.Broker(t)
	conn, err := pipeline.NewConn(testenv.AMQPURL(), "sched-test", testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pub := pipeline.NewPublisher(conn, testenv.Logger(t))
	defer pub.Close()

	tg, err := s.CreateTarget(t.Context(), target.Spec{Name: "r", SeedURL: "http://example.test/",
		Scope: "host", MaxDepth: 1, MaxPages: 10, MaxAttempts: 2, RecrawlInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	lim := store.DispatchLimits{MaxInFlight: 10, HostMaxInFlight: 10, Hosts: 10, Lease: time.Minute}
	jobs, err := s.Dispatch(t.Context(), lim)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Dispatch = %v, %v", jobs, err)
	}
	pol := process.Policy{RetryBase: time.Millisecond, RetryMax: time.Millisecond, Canon: crawlurl.Default}
	if _, err := s.ApplyResults(t.Context(), []store.Result{{URLID: jobs[0].URLID, TargetID: tg.ID, URL: jobs[0].URL,
		Status: 200, ETag: `"e1"`, ContentHash: "h", StartedAt: time.Now()}}, pol); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Target(t.Context(), tg.ID); got.State != store.TargetDone {
		t.Fatalf("target = %s, want done", got.State)
	}
	// The interval passes.
	c, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(t.Context(), `UPDATE targets SET finished_at = now() - interval '2 hours'`); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	sched := &process.Scheduler{Frontier: s, Pub: pub, Topology: topo, Limits: lim, Interval: 20 * time.Millisecond, Log: testenv.Logger(t)}
	var wg sync.WaitGroup
	wg.Go(func() { sched.Run(ctx, ctx) })
	defer func() { cancel(); wg.Wait() }()

	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "the re-crawl job in the crawl queue", func() bool {
		return testenv.QueueDepth(t, raw, topo.CrawlQueue()) == 1
	})
	ch, err := raw.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	d, ok, err := ch.Get(topo.CrawlQueue(), false)
	if err != nil || !ok {
		t.Fatalf("get job: %v, %v", ok, err)
	}
	var job message.CrawlJob
	if err := message.Decode(d.Body, message.TypeCrawlJob, &job); err != nil {
		t.Fatal(err)
	}
	if job.URLID != jobs[0].URLID || job.ETag != `"e1"` || job.Dispatch != 2 {
		t.Fatalf("re-crawl job = %+v, want the seed again with its ETag, dispatch 2", job)
	}
	if time.Until(job.LeaseUntil) <= 0 || time.Until(job.LeaseUntil) > lim.Lease {
		t.Errorf("job's LeaseUntil = %v, want its lease's end, within %v from now", job.LeaseUntil, lim.Lease)
	}
	_ = d.Ack(false)
	if got, _ := s.Target(t.Context(), tg.ID); got.State != store.TargetActive {
		t.Fatalf("target after re-crawl = %s, want active", got.State)
	}
}
