package pipeline_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/test/testenv"
)

func TestManagementURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"amqp://guest:guest@127.0.0.1:5672/", "http://guest:guest@127.0.0.1:15672"},
		{"amqp://u:p%40ss@rabbit:5672/vh, amqp://u:p@other:5672/", "http://u:p%40ss@rabbit:15672"},
		{"amqps://u:p@rabbit/", "https://u:p@rabbit:15671"},
	} {
		got, err := pipeline.ManagementURL(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ManagementURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := pipeline.ManagementURL("http://nope"); err == nil {
		t.Error("ManagementURL(http://...) succeeded")
	}
	if _, err := pipeline.NewAdmin("ftp://x", testenv.AMQPURL(), pipeline.Topology{}); err == nil {
		t.Error("NewAdmin with an ftp management url succeeded")
	}
}

func newAdmin(t *testing.T, topo pipeline.Topology) *pipeline.Admin {
	t.Helper()
	a, err := pipeline.NewAdmin("", testenv.AMQPURL(), topo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if _, err := a.QueueStats(t.Context()); err != nil && !errors.Is(err, pipeline.ErrQueueNotFound) {
		if strings.Contains(err.Error(), "connection refused") && os.Getenv("CI") != "true" {
			t.Skipf("management API not reachable: %v", err)
		}
	}
	return a
}

func TestQueueStatsMatchBroker(t *testing.T) {
	t.Parallel()
	topo, raw := testenv.Broker(t)
	admin := newAdmin(t, topo)
	pub := pipeline.NewPublisher(testenv.Dial(t, "pub"), testenv.Logger(t))
	defer pub.Close()
	const jobs, pages = 7, 3
	for i := range jobs {
		if err := pub.Publish(t.Context(), topo.CrawlExchange(), pipeline.KeyJob, job(t, fmt.Sprintf("http://a/%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range pages {
		if err := pub.Publish(t.Context(), topo.PagesExchange(), pipeline.KeyPage, job(t, fmt.Sprintf("http://a/%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	// Hold every pages message unacked on one consumer.
	ch, err := raw.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Qos(10, 0, false); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume(topo.PagesQueue(), "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range pages {
		select {
		case <-ds:
		case <-time.After(10 * time.Second):
			t.Fatal("no delivery")
		}
	}
	want := []pipeline.QueueStat{
		{Name: topo.CrawlQueue(), Role: "crawl.jobs", Ready: jobs, Source: "management"},
		{Name: topo.PagesQueue(), Role: "pages", Unacked: pages, Consumers: 1, Source: "management"},
		{Name: topo.DeadLetterQueue(), Role: "dead-letters", Source: "management"},
		{Name: topo.RecrawlQueue(), Role: "rpc.recrawl", Source: "management"},
	}
	// The management API refreshes its statistics every few seconds: poll until they agree.
	var got []pipeline.QueueStat
	testenv.Eventually(t, 30*time.Second, 250*time.Millisecond, "management stats to match", func() bool {
		got, err = admin.QueueStats(t.Context())
		if err != nil {
			t.Fatalf("QueueStats: %v", err)
		}
		return cmp.Diff(want, got) == ""
	})
	// And they agree with what the broker says through AMQP.
	if n := testenv.QueueDepth(t, raw, topo.CrawlQueue()); int64(n) != got[0].Ready {
		t.Fatalf("passive declare says %d ready, management API %d", n, got[0].Ready)
	}

	// Without the management API, the fallback reads ready and consumer counts over AMQP.
	noAPI, err := pipeline.NewAdmin("http://guest:guest@127.0.0.1:1", testenv.AMQPURL(), topo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(noAPI.Close)
	if _, err := noAPI.QueueStats(t.Context()); err == nil {
		t.Fatal("QueueStats without a management API and no fallback succeeded")
	}
	got, err = noAPI.WithFallback(testenv.Dial(t, "admin")).QueueStats(t.Context())
	if err != nil {
		t.Fatalf("QueueStats with fallback: %v", err)
	}
	want = []pipeline.QueueStat{
		{Name: topo.CrawlQueue(), Role: "crawl.jobs", Ready: jobs, Unacked: -1, Source: "amqp"},
		{Name: topo.PagesQueue(), Role: "pages", Unacked: -1, Consumers: 1, Source: "amqp"},
		{Name: topo.DeadLetterQueue(), Role: "dead-letters", Unacked: -1, Source: "amqp"},
		{Name: topo.RecrawlQueue(), Role: "rpc.recrawl", Unacked: -1, Source: "amqp"},
	}
	for i := range got {
		// The dashboard shows why the management API was not used, and where it was looked for.
		if !strings.Contains(got[i].Cause, "management api at http://127.0.0.1:1") || strings.Contains(got[i].Cause, "guest") {
			t.Errorf("fallback stat %s: cause %q, want the API's error naming its address without credentials", got[i].Name, got[i].Cause)
		}
		want[i].Cause = got[i].Cause
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("fallback stats (-want +got):\n%s", diff)
	}
}

func TestQueueStatsErrors(t *testing.T) {
	t.Parallel()
	admin := newAdmin(t, pipeline.Topology{Prefix: testenv.Name("missing") + "."})
	_, err := admin.QueueStats(t.Context())
	if !errors.Is(err, pipeline.ErrQueueNotFound) {
		t.Fatalf("QueueStats of an undeclared topology = %v, want ErrQueueNotFound", err)
	}
	base := strings.Replace(admin.BaseURL(), "://", "://guest:wrong-password@", 1)
	bad, err := pipeline.NewAdmin(base, testenv.AMQPURL(), pipeline.Topology{Prefix: "x."})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bad.Close)
	_, err = bad.QueueStats(t.Context())
	if err == nil || !strings.Contains(err.Error(), "refused the credentials") || strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("QueueStats with a bad password = %v, want a credentials error without the password", err)
	}
}
