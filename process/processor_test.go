package process_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/process"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

// processorFixture is a store and a broker topology of the test's own, and a target whose seed
// is done and whose n linked pages are leased as jobs, waiting for their results.
type processorFixture struct {
	s    *store.Store
	dsn  string
	topo pipeline.Topology
	raw  *amqp.Connection
	conn *pipeline.Conn
	pub  *pipeline.Publisher
	tg   store.Target
	jobs []store.Job
	pol  process.Policy
}

// newFixture opens a real database and a real broker for the test name, with a publisher, and
// creates a target seeded at http://name.test/.
func newFixture(t *testing.T, name string) processorFixture {
	t.Helper()
	fx := processorFixture{pol: process.Policy{RetryBase: time.Millisecond, RetryMax: time.Millisecond, Canon: crawlurl.Default}}
	fx.s, fx.dsn = testenv.Store(t)
	fx.topo, fx.raw = testenv.Broker(t)
	fx.conn = testenv.Dial(t, "process-"+name)
	fx.pub = pipeline.NewPublisher(fx.conn, testenv.Logger(t))
	t.Cleanup(func() { _ = fx.pub.Close() })
	fx.tg = createTarget(t, fx.s, name)
	return fx
}

// createTarget creates a target seeded at http://name.test/ (host scope, depth 2, 1,000 pages).
func createTarget(t *testing.T, s *store.Store, name string) store.Target {
	t.Helper()
	host := name + ".test"
	tg, err := s.CreateTarget(t.Context(), target.Spec{Name: name, SeedURL: "http://" + host + "/",
		Scope: "host", MaxDepth: 2, MaxPages: 1000, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func newProcessorFixture(t *testing.T, name string, n int) processorFixture {
	t.Helper()
	ctx := t.Context()
	fx := newFixture(t, name)
	tg, host := fx.tg, name+".test"
	lim := store.DispatchLimits{MaxInFlight: 2 * n, HostMaxInFlight: 2 * n, Hosts: 10, Lease: time.Hour}
	seed, err := fx.s.Dispatch(ctx, lim)
	if err != nil || len(seed) != 1 {
		t.Fatalf("Dispatch(seed) = %v, %v", seed, err)
	}
	links := make([]string, n)
	for i := range links {
		links[i] = fmt.Sprintf("http://%s/p/%d", host, i)
	}
	if _, err := fx.s.ApplyResults(ctx, []store.Result{{URLID: seed[0].URLID, TargetID: tg.ID, URL: seed[0].URL,
		Status: 200, ContentType: "text/html", Links: links, ContentHash: "seed", StartedAt: time.Now()}}, fx.pol); err != nil {
		t.Fatal(err)
	}
	if fx.jobs, err = fx.s.Dispatch(ctx, lim); err != nil || len(fx.jobs) != n {
		t.Fatalf("Dispatch = %d jobs, %v; want %d", len(fx.jobs), err, n)
	}
	return fx
}

// The processor acks a committed batch with one "multiple" ack. Poison messages in the middle
// of a batch must still be dead-lettered, not swept up by that ack, and every good result must
// be stored and acked (one with a huge content type too; several in messages of several
// results, one of them holding a poison result and one redelivered): after the consumer stops,
// nothing returns to the queue.
func TestProcessorBatchesAckEverythingAndDeadLetterPoison(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const n = 120
	fx := newProcessorFixture(t, "acks", n)
	s, topo, raw, pub, tg, jobs, pol := fx.s, fx.topo, fx.raw, fx.pub, fx.tg, fx.jobs, fx.pol
	conn := fx.conn

	// A frame whose text block claims to expand beyond the message limit.
	meta := []byte(`{"type":"fetch.result","v":1,"id":"bomb","kind":"page"}`)
	bomb := append([]byte{0, 'T', 'R', 'F'}, binary.AppendUvarint(nil, uint64(len(meta)))...)
	bomb = binary.AppendUvarint(append(bomb, meta...), message.MaxMessageBytes+1)
	poison := map[int]message.Encoded{
		7:  {ID: "poison-json", Type: message.TypeFetchResult, Body: []byte(`{"type":"fetch.result","v":1,"id":`)},
		60: {ID: "poison-bomb", Type: message.TypeFetchResult, Body: bomb},
	}
	// Results 80 to 87 travel in one message, 90 to 93 in another with a poison result among
	// them (split: the poison alone is dead-lettered), and 100 to 103 in one that was delivered
	// before, as if a processor had died holding it (split too).
	badPart := []byte(`{"type":"fetch.result","v":99,"id":"poison-in-bundle"}`)
	bundles := map[int]int{80: 8, 90: 4, 100: 4}
	var msgs, redeliver []message.Encoded
	var parts [][]byte
	var bundleEnd int
	for i, j := range jobs {
		if m, ok := poison[i]; ok {
			msgs = append(msgs, m)
		}
		if size, ok := bundles[i]; ok {
			bundleEnd, parts = i+size, nil
		}
		fr := message.FetchResult{Envelope: message.NewEnvelope(message.TypeFetchResult), Kind: message.KindPage,
			URLID: j.URLID, TargetID: j.TargetID, URL: j.URL, Depth: j.Depth, Dispatch: j.Dispatch, Worker: "test",
			FinalURL: j.URL, Status: 200, ContentType: "text/html", Title: "page", Text: "text of " + j.URL,
			ContentHash: j.URL, Size: 100, StartedAt: time.Now()}
		if i == 30 {
			// A server's 6,000-byte Content-Type (random, so it cannot be compressed): more than
			// an entry of the pages indexes can hold, unless the processor cuts it.
			junk := make([]byte, 4500)
			_, _ = rand.Read(junk)
			fr.ContentType = "text/html; x=" + base64.RawURLEncoding.EncodeToString(junk)
		}
		body, err := message.EncodeFetchResult(fr)
		if err != nil {
			t.Fatal(err)
		}
		if i >= bundleEnd {
			msgs = append(msgs, message.Encoded{ID: fr.ID, Type: fr.Type, Body: body})
			continue
		}
		if parts = append(parts, body); i == 91 {
			parts = append(parts, badPart)
		}
		if i == bundleEnd-1 {
			m := message.Encoded{ID: fmt.Sprintf("bundle-%d", i), Type: message.TypeFetchResults, Body: message.PackResults(parts)}
			if i == 103 {
				redeliver = append(redeliver, m)
			} else {
				msgs = append(msgs, m)
			}
		}
	}
	if err := pub.Publish(ctx, topo.PagesExchange(), pipeline.KeyPage, redeliver...); err != nil {
		t.Fatal(err)
	}
	if d := testenv.Get(t, raw, topo.PagesQueue(), false); d.MessageId != "bundle-103" {
		t.Fatalf("got %q from the queue, want bundle-103", d.MessageId)
	} else if err := d.Nack(false, true); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, topo.PagesExchange(), pipeline.KeyPage, msgs...); err != nil {
		t.Fatal(err)
	}
	poison[91] = message.Encoded{ID: "poison-in-bundle"}

	proc := &process.Processor{Store: s, Robots: s, Sitemaps: s, Policy: pol, BatchSize: 16, BatchWait: 20 * time.Millisecond,
		Pub: pub, Topology: topo, Log: testenv.Logger(t)}
	cons := &pipeline.Consumer{Conn: conn, Queue: topo.PagesQueue(), Prefetch: 48, Topology: topo, Log: testenv.Logger(t)}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = cons.Run(runCtx, func(d pipeline.Deliveries) { proc.Serve(runCtx, d) }) })
	testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, "the target to finish", func() bool {
		got, err := s.Target(ctx, tg.ID)
		return err == nil && got.State == store.TargetDone
	})
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "every result to be acked", func() bool {
		return proc.Processed() == n
	})
	stop()
	wg.Wait()
	if n := proc.Splits(); n != 2 {
		t.Errorf("Splits = %d, want 2 (the bundle with a poison result, the redelivered one)", n)
	}

	got, err := s.Target(ctx, tg.ID)
	if err != nil || got.URLsDone != n+1 || got.URLsFailed != 0 {
		t.Fatalf("target = %+v, %v; want %d done", got, err, n+1)
	}
	// Unacked deliveries would be back in the queue now that the channel is closed.
	if d := testenv.QueueDepth(t, raw, topo.PagesQueue()); d != 0 {
		t.Fatalf("pages queue holds %d messages after the processor stopped, want 0 (all acked)", d)
	}
	dead := map[string]string{}
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "every poison message dead-lettered", func() bool {
		if testenv.QueueDepth(t, raw, topo.DeadLetterQueue()) == 0 {
			return len(dead) == len(poison)
		}
		d := testenv.Get(t, raw, topo.DeadLetterQueue(), true)
		dead[d.MessageId], _ = testenv.XDeath(t, d)
		return len(dead) == len(poison)
	})
	for _, m := range poison {
		if dead[m.ID] != "rejected" {
			t.Errorf("poison %s: dead-letter reason %q, want rejected (dead: %v)", m.ID, dead[m.ID], dead)
		}
	}
}

// A message of several results in which one cannot be persisted (it names another URL than the
// one its id was leased for) fails its batch even alone. The processor splits it (at once, or at
// the latest when the message comes back redelivered): the good results are stored once, and
// the bad one alone goes round until the delivery limit dead-letters it.
func TestProcessorSplitsAMessageWhoseResultCannotBePersisted(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	fx := newProcessorFixture(t, "split", 3)
	s, topo, raw, pub, tg, jobs, pol, conn := fx.s, fx.topo, fx.raw, fx.pub, fx.tg, fx.jobs, fx.pol, fx.conn
	var parts [][]byte
	var badID string
	for i, j := range jobs {
		fr := message.FetchResult{Envelope: message.NewEnvelope(message.TypeFetchResult), Kind: message.KindPage,
			URLID: j.URLID, TargetID: j.TargetID, URL: j.URL, Depth: j.Depth, Dispatch: j.Dispatch, Worker: "test",
			Status: 200, ContentType: "text/html", Text: "text of " + j.URL, ContentHash: j.URL, StartedAt: time.Now()}
		if i == 1 {
			fr.URL, badID = "http://split.test/p/not-the-leased-url", fr.ID
		}
		body, err := message.EncodeFetchResult(fr)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, body)
	}
	if err := pub.Publish(ctx, topo.PagesExchange(), pipeline.KeyPage,
		message.Encoded{ID: "bundle", Type: message.TypeFetchResults, Body: message.PackResults(parts)}); err != nil {
		t.Fatal(err)
	}

	proc := &process.Processor{Store: s, Policy: pol, BatchSize: 16, BatchWait: 20 * time.Millisecond,
		Pub: pub, Topology: topo, Log: testenv.Logger(t)}
	cons := &pipeline.Consumer{Conn: conn, Queue: topo.PagesQueue(), Prefetch: 16, Topology: topo, Log: testenv.Logger(t)}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = cons.Run(runCtx, func(d pipeline.Deliveries) { proc.Serve(runCtx, d) }) })
	dl := testenv.Get(t, raw, topo.DeadLetterQueue(), true)
	stop()
	wg.Wait()

	if r, _ := testenv.XDeath(t, dl); r != "delivery_limit" || dl.MessageId != badID {
		t.Errorf("dead letter %q (reason %q), want the bad result %q alone after the delivery limit", dl.MessageId, r, badID)
	}
	if n := proc.Splits(); n != 1 {
		t.Errorf("Splits = %d, want 1", n)
	}
	got, err := s.Target(ctx, tg.ID)
	if err != nil || got.URLsDone != 3 {
		t.Errorf("target = %+v, %v; want the seed and the two good pages done", got, err)
	}
	if d := testenv.QueueDepth(t, raw, topo.PagesQueue()); d != 0 {
		t.Errorf("pages queue holds %d messages, want 0", d)
	}
	if d := testenv.QueueDepth(t, raw, topo.DeadLetterQueue()); d != 0 {
		t.Errorf("%d more dead letters: a good result was dead-lettered with the bad one", d)
	}
}

// TestProcessorHonoursNoFollow runs a page that says nofollow through a real broker and
// database: its link stays out of the frontier, unless the processor ignores nofollow (as it
// does with TRAWL_IGNORE_ROBOTS).
func TestProcessorHonoursNoFollow(t *testing.T) {
	t.Parallel()
	for _, ignore := range []bool{false, true} {
		t.Run(fmt.Sprintf("ignore=%v", ignore), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			name := "nofollow"
			if ignore {
				name = "ignorenofollow"
			}
			fx := newProcessorFixture(t, name, 1)
			j := fx.jobs[0]
			fr := message.FetchResult{Envelope: message.NewEnvelope(message.TypeFetchResult), Kind: message.KindPage,
				URLID: j.URLID, TargetID: j.TargetID, URL: j.URL, Depth: j.Depth, Dispatch: j.Dispatch, Worker: "test",
				Status: 200, ContentType: "text/html", Text: "text", ContentHash: j.URL, StartedAt: time.Now(),
				Links: []string{"http://" + name + ".test/q/1"}, NoFollow: true}
			body, err := message.EncodeFetchResult(fr)
			if err != nil {
				t.Fatal(err)
			}
			if err := fx.pub.Publish(ctx, fx.topo.PagesExchange(), pipeline.KeyPage,
				message.Encoded{ID: fr.ID, Type: message.TypeFetchResult, Body: body}); err != nil {
				t.Fatal(err)
			}
			proc := &process.Processor{Store: fx.s, Policy: fx.pol, BatchSize: 16, BatchWait: 20 * time.Millisecond,
				Pub: fx.pub, Topology: fx.topo, Log: testenv.Logger(t), IgnoreNoFollow: ignore}
			cons := &pipeline.Consumer{Conn: fx.conn, Queue: fx.topo.PagesQueue(), Prefetch: 16, Topology: fx.topo, Log: testenv.Logger(t)}
			runCtx, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			wg.Go(func() { _ = cons.Run(runCtx, func(d pipeline.Deliveries) { proc.Serve(runCtx, d) }) })
			defer func() { stop(); wg.Wait() }()
			var got store.Target
			testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, "the page applied", func() bool {
				got, err = fx.s.Target(ctx, fx.tg.ID)
				return err == nil && got.URLsDone == 2
			})
			want := int64(2) // the seed and the nofollow page
			if ignore {
				want = 3 // and the page it links to
			}
			if got.URLsTotal != want {
				t.Errorf("target has %d URLs, want %d", got.URLsTotal, want)
			}
		})
	}
}
