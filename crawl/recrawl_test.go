package crawl_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trawlhq/trawl/crawl"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/test/testenv"
)

// site serves one HTML page with an ETag and counts the requests that reach it.
type site struct {
	*httptest.Server
	hits    atomic.Int64
	lastINM atomic.Value // If-None-Match of the last request
}

func newSite(t *testing.T) *site {
	t.Helper()
	s := &site{}
	s.lastINM.Store("")
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.lastINM.Store(r.Header.Get("If-None-Match"))
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<html><head><title>Page</title></head><body>hello <a href="/b">b</a></body></html>`))
	}))
	t.Cleanup(s.Close)
	return s
}

// startServer runs a RecrawlServer on topo's recrawl queue until the test ends.
func startServer(t *testing.T, topo pipeline.Topology, id string, wrap ...func(crawl.Publisher) crawl.Publisher) *crawl.RecrawlServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pubConn := testenv.Dial(t, id+"-pub")
	pub := pipeline.NewPublisher(pubConn, testenv.Logger(t))
	replies := pipeline.NewPublisher(pubConn, testenv.Logger(t))
	var p crawl.Publisher = pub
	for _, w := range wrap {
		p = w(p)
	}
	srv := &crawl.RecrawlServer{
		Fetcher: crawl.NewFetcher(ctx, crawl.FetchConfig{UserAgent: "test", Timeout: 5 * time.Second, MaxBodyBytes: 1 << 20,
			Concurrency: 2, Guard: crawl.Guard{AllowPrivate: true}}),
		Pub: p, Replies: replies, Topology: topo, Concurrency: 2, ID: id, Log: testenv.Logger(t),
	}
	cons := &pipeline.Consumer{Conn: testenv.Dial(t, id+"-cons"), Queue: topo.RecrawlQueue(), Prefetch: 2, Topology: topo, Log: testenv.Logger(t)}
	var wg sync.WaitGroup
	wg.Go(func() { _ = cons.Run(ctx, func(d pipeline.Deliveries) { srv.Serve(ctx, ctx.Done(), d) }) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		_ = replies.Close()
		_ = pub.Close()
	})
	return srv
}

func call(t *testing.T, c *pipeline.RPCClient, req message.RecrawlRequest) message.RecrawlReply {
	t.Helper()
	reply, err := c.Call(t.Context(), req)
	if err != nil {
		t.Fatalf("Call(%s): %v", req.RequestID, err)
	}
	return reply
}

// results drains the pages queue and decodes what the crawler published.
func results(t *testing.T, topo pipeline.Topology) []message.FetchResult {
	t.Helper()
	conn := testenv.Dial(t, "inspect")
	ch, err := conn.Channel(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	var out []message.FetchResult
	for {
		d, ok, err := ch.Get(topo.PagesQueue(), true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		var fr message.FetchResult
		if err := message.Decode(d.Body, message.TypeFetchResult, &fr); err != nil {
			t.Fatal(err)
		}
		out = append(out, fr)
	}
}

func TestRecrawlFetchesPublishesAndReplies(t *testing.T) {
	t.Parallel()
	topo, _ := testenv.Broker(t)
	s := newSite(t)
	srv := startServer(t, topo, "crawler-a")
	client := pipeline.NewRPCClient(testenv.Dial(t, "client"), topo, 20*time.Second, testenv.Logger(t))
	defer client.Close()

	req := message.RecrawlRequest{RequestID: "req-1", URLID: 5, TargetID: 2, URL: s.URL + "/a", Depth: 1, ContentHash: "old"}
	reply := call(t, client, req)
	if reply.RequestID != "req-1" || reply.URLID != 5 || reply.Status != 200 || !reply.Changed || !reply.Fetched ||
		reply.Worker != "crawler-a" || reply.Error != "" || reply.ContentHash == "" {
		t.Fatalf("reply = %+v", reply)
	}
	// A resend (same request id, new message) is answered from memory without a fetch.
	again := call(t, client, req)
	if again.Status != reply.Status || again.ContentHash != reply.ContentHash || !again.Fetched {
		t.Fatalf("resend reply = %+v, want %+v", again, reply)
	}
	if s.hits.Load() != 1 || srv.Fetches() != 1 || srv.Served() != 2 {
		t.Fatalf("site hits = %d, fetches = %d, served = %d; want 1, 1, 2", s.hits.Load(), srv.Fetches(), srv.Served())
	}
	res := results(t, topo)
	if len(res) != 1 || res[0].URLID != 5 || res[0].TargetID != 2 || res[0].Depth != 1 || res[0].Title != "Page" || len(res[0].Links) != 1 {
		t.Fatalf("published results = %+v", res)
	}

	// Unchanged: the same content hash as last time.
	same := call(t, client, message.RecrawlRequest{RequestID: "req-2", URLID: 5, TargetID: 2, URL: s.URL + "/a", ContentHash: reply.ContentHash})
	if same.Changed || same.Status != 200 {
		t.Fatalf("same-hash reply = %+v, want unchanged", same)
	}
	// Conditional GET: the ETag goes out as If-None-Match and the 304 is unchanged.
	cond := call(t, client, message.RecrawlRequest{RequestID: "req-3", URLID: 5, TargetID: 2, URL: s.URL + "/a", ETag: `"v1"`,
		ContentHash: reply.ContentHash})
	if cond.Changed || cond.Status != http.StatusNotModified || s.lastINM.Load() != `"v1"` || cond.ContentHash != reply.ContentHash {
		t.Fatalf("conditional reply = %+v, If-None-Match %q", cond, s.lastINM.Load())
	}
	// The 304's result keeps the known content hash and validators.
	res = results(t, topo)
	if len(res) != 2 || res[1].Status != http.StatusNotModified || res[1].ContentHash != reply.ContentHash || res[1].ETag != `"v1"` {
		t.Fatalf("published results after the 304 = %+v", res)
	}
}

func TestRecrawlExpiredRequestIsNotFetched(t *testing.T) {
	t.Parallel()
	topo, _ := testenv.Broker(t)
	s := newSite(t)
	startServer(t, topo, "crawler-a")
	client := pipeline.NewRPCClient(testenv.Dial(t, "client"), topo, 20*time.Second, testenv.Logger(t))
	defer client.Close()
	req := message.RecrawlRequest{RequestID: "old", URLID: 1, TargetID: 1, URL: s.URL, Deadline: time.Now().Add(-time.Second)}
	reply := call(t, client, req)
	if reply.Fetched || reply.Error == "" || s.hits.Load() != 0 {
		t.Fatalf("expired reply = %+v, hits %d", reply, s.hits.Load())
	}
	// Nothing was remembered: the same id with a live deadline fetches.
	req.Deadline = time.Now().Add(time.Minute)
	if reply := call(t, client, req); !reply.Fetched || s.hits.Load() != 1 {
		t.Fatalf("retry reply = %+v, hits %d", reply, s.hits.Load())
	}
}

func TestRecrawlPoisonRequestIsDeadLettered(t *testing.T) {
	t.Parallel()
	topo, raw := testenv.Broker(t)
	startServer(t, topo, "crawler-a")
	pub := pipeline.NewPublisher(testenv.Dial(t, "pub"), testenv.Logger(t))
	defer pub.Close()
	if err := pub.Publish(t.Context(), topo.CrawlExchange(), pipeline.KeyRecrawl, message.Encoded{ID: "p", Body: []byte("nope")}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, "the poison request dead-lettered", func() bool {
		return testenv.QueueDepth(t, raw, topo.DeadLetterQueue()) == 1
	})
}

// flakyPub fails its first publish, as a lost channel would, then passes through.
type flakyPub struct {
	crawl.Publisher
	failed atomic.Bool
}

func (f *flakyPub) Publish(ctx context.Context, exchange, key string, msgs ...message.Encoded) error {
	if f.failed.CompareAndSwap(false, true) {
		return pipeline.ErrChannelLost
	}
	return f.Publisher.Publish(ctx, exchange, key, msgs...)
}

func TestRecrawlRedeliveryPublishesTheRememberedResult(t *testing.T) {
	t.Parallel()
	topo, _ := testenv.Broker(t)
	s := newSite(t)
	srv := startServer(t, topo, "crawler-a", func(p crawl.Publisher) crawl.Publisher { return &flakyPub{Publisher: p} })
	client := pipeline.NewRPCClient(testenv.Dial(t, "client"), topo, 20*time.Second, testenv.Logger(t))
	defer client.Close()
	reply := call(t, client, message.RecrawlRequest{RequestID: "r", URLID: 1, TargetID: 1, URL: s.URL})
	if !reply.Fetched || reply.Status != 200 {
		t.Fatalf("reply = %+v", reply)
	}
	if s.hits.Load() != 1 || srv.Fetches() != 1 {
		t.Fatalf("site hits = %d, fetches = %d after a redelivery; want 1", s.hits.Load(), srv.Fetches())
	}
	if res := results(t, topo); len(res) != 1 {
		t.Fatalf("%d results published, want 1", len(res))
	}
}
