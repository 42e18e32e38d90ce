package process_test

import (
	"testing"
	"time"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/process"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

// An edit that narrows a target's scope takes effect at the scheduler's next tick and the
// policy's next batch: the queued URLs that fall out of it are not published (they are kept,
// cancelled as out of scope), and links out of it are no longer admitted, although the old
// scope was compiled and cached.
func TestSchedulerSkipsURLsANarrowedScopeLeavesOut(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	topo, raw := testenv.Broker(t)
	conn, err := pipeline.NewConn(testenv.AMQPURL(), "sched-edit-test", testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pub := pipeline.NewPublisher(conn, testenv.Logger(t))
	defer pub.Close()

	tg, err := s.CreateTarget(t.Context(), target.Spec{Name: "e", SeedURL: "http://edit.test/",
		Scope: "host", MaxDepth: 3, MaxPages: 100, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	lim := store.DispatchLimits{MaxInFlight: 10, HostMaxInFlight: 10, Hosts: 10, Lease: time.Minute}
	jobs, err := s.Dispatch(t.Context(), lim)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Dispatch = %v, %v", jobs, err)
	}
	pol := process.Policy{RetryBase: time.Millisecond, RetryMax: time.Millisecond, Canon: crawlurl.Default}
	a, err := s.ApplyResults(t.Context(), []store.Result{{URLID: jobs[0].URLID, TargetID: tg.ID, URL: jobs[0].URL,
		Status: 200, StartedAt: time.Now(),
		Links: []string{"http://edit.test/docs/a", "http://edit.test/blog/b", "http://edit.test/blog/c"}}}, pol)
	if err != nil || a.Discovered != 3 {
		t.Fatalf("apply the seed = %+v, %v; want 3 URLs discovered", a, err)
	}

	if _, err := s.UpdateTarget(t.Context(), tg.ID, target.Patch{Include: new("/docs/")}.Apply); err != nil {
		t.Fatal(err)
	}
	sched := &process.Scheduler{Frontier: s, Pub: pub, Topology: topo, Limits: lim, Interval: time.Hour, Log: testenv.Logger(t)}
	n, err := sched.Tick(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("Tick = %d, %v; want the one URL still in scope", n, err)
	}
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "the job in the crawl queue", func() bool {
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
	_ = d.Ack(false)
	if job.URL != "http://edit.test/docs/a" {
		t.Fatalf("published %s, want only the URL still in scope", job.URL)
	}
	got, err := s.Target(t.Context(), tg.ID)
	if err != nil || got.URLsCancelled != 2 || got.URLsTotal != 4 {
		t.Fatalf("target = %+v, %v; want the 2 URLs out of scope kept, cancelled", got, err)
	}
	if n, err := sched.Tick(t.Context()); err != nil || n != 0 {
		t.Fatalf("second Tick = %d, %v; want nothing more", n, err)
	}

	// The policy's next batch reads the edited target and admits by the new scope.
	a, err = s.ApplyResults(t.Context(), []store.Result{{URLID: job.URLID, TargetID: tg.ID, URL: job.URL,
		Status: 200, StartedAt: time.Now(), Links: []string{"http://edit.test/docs/x", "http://edit.test/blog/y"}}}, pol)
	if err != nil || a.Discovered != 1 {
		t.Fatalf("apply after the edit = %+v, %v; want only the /docs/ link discovered", a, err)
	}
}
