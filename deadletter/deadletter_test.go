package deadletter_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/trawlhq/trawl/deadletter"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/test/testenv"
)

type env struct {
	topo pipeline.Topology
	raw  *amqp.Connection
	db   *store.Store
	pub  *pipeline.Publisher
	svc  *deadletter.Service
}

// setup gives the test a database, a topology and a running mirror on its dead-letter queue.
func setup(t *testing.T) *env {
	t.Helper()
	db, _ := testenv.Store(t)
	topo, raw := testenv.Broker(t)
	pubConn := testenv.Dial(t, "pub")
	pub := pipeline.NewPublisher(pubConn, testenv.Logger(t))
	sender := pipeline.NewPublisher(pubConn, testenv.Logger(t))
	mirror := &deadletter.Mirror{Store: db, Log: testenv.Logger(t)}
	cons := &pipeline.Consumer{Conn: testenv.Dial(t, "dlq"), Queue: topo.DeadLetterQueue(), Prefetch: 10, Topology: topo, Log: testenv.Logger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = cons.Run(ctx, func(d pipeline.Deliveries) { mirror.Serve(ctx, d) }) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		_ = sender.Close()
		_ = pub.Close()
	})
	return &env{topo: topo, raw: raw, db: db, pub: pub, svc: &deadletter.Service{Store: db, Publisher: sender}}
}

// kill takes one message from queue and rejects it, so the broker dead-letters it.
func (e *env) kill(t *testing.T, queue string) {
	t.Helper()
	if err := testenv.Get(t, e.raw, queue, false).Reject(false); err != nil {
		t.Fatal(err)
	}
}

// rows waits until the mirror has stored n dead letters matching f and returns them.
func (e *env) rows(t *testing.T, f store.DeadLetterFilter, n int) []store.DeadLetter {
	t.Helper()
	var got []store.DeadLetter
	testenv.Eventually(t, 15*time.Second, 50*time.Millisecond, "mirrored dead letters", func() bool {
		var err error
		got, err = e.db.DeadLetters(t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		return len(got) >= n
	})
	if len(got) != n {
		t.Fatalf("%d dead letters, want %d: %+v", len(got), n, got)
	}
	return got
}

func fetchResult(t *testing.T, targetID int64, u, class string) message.Encoded {
	t.Helper()
	fr := message.FetchResult{Envelope: message.NewEnvelope(message.TypeFetchResult), Kind: message.KindPage,
		URLID: 7, TargetID: targetID, URL: u, Error: "boom", ErrorClass: class}
	b, err := message.Encode(fr)
	if err != nil {
		t.Fatal(err)
	}
	return message.Encoded{ID: fr.ID, Type: message.TypeFetchResult, Body: b}
}

func TestPoisonIsMirroredAndRequeued(t *testing.T) {
	t.Parallel()
	e := setup(t)
	poison := []byte("{not json\x00\xff")
	if err := e.pub.Publish(t.Context(), e.topo.CrawlExchange(), pipeline.KeyJob, message.Encoded{ID: "poison-1", Body: poison}); err != nil {
		t.Fatal(err)
	}
	e.kill(t, e.topo.CrawlQueue())
	dl := e.rows(t, store.DeadLetterFilter{}, 1)[0]
	if dl.Reason != "rejected" || dl.OriginalQueue != e.topo.CrawlQueue() || dl.Exchange != e.topo.CrawlExchange() ||
		dl.RoutingKey != pipeline.KeyJob || dl.ErrorClass != "undecodable" || dl.MessageID != "poison-1" || dl.Size != len(poison) {
		t.Fatalf("dead letter = %+v", dl)
	}
	// Acked after commit: the dead-letter queue is empty.
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, "an empty dead-letter queue", func() bool {
		return testenv.QueueDepth(t, e.raw, e.topo.DeadLetterQueue()) == 0
	})
	full, err := e.db.DeadLetter(t.Context(), dl.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(full.Body) != string(poison) || !strings.Contains(string(full.Headers), `"x-death"`) {
		t.Fatalf("stored body %q headers %s", full.Body, full.Headers)
	}

	n, err := e.svc.Requeue(t.Context(), []int64{dl.ID})
	if err != nil || n != 1 {
		t.Fatalf("Requeue = %d, %v", n, err)
	}
	back := testenv.Get(t, e.raw, e.topo.CrawlQueue(), false)
	if string(back.Body) != string(poison) || back.MessageId != "poison-1" || back.DeliveryMode != amqp.Persistent {
		t.Fatalf("requeued message body=%q id=%q mode=%d", back.Body, back.MessageId, back.DeliveryMode)
	}
	if _, ok := back.Headers["x-death"]; ok {
		t.Fatalf("requeued message still carries x-death: %v", back.Headers)
	}
	if _, err := e.db.DeadLetter(t.Context(), dl.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("row after requeue: %v, want ErrNotFound", err)
	}

	// Dying again is a new dead letter, not a duplicate of the requeued one.
	if err := back.Reject(false); err != nil {
		t.Fatal(err)
	}
	again := e.rows(t, store.DeadLetterFilter{}, 1)[0]
	if again.ID == dl.ID || again.Count != 1 {
		t.Fatalf("second death = %+v", again)
	}
}

func TestDeliveryLimitDeathDescribesThePayload(t *testing.T) {
	t.Parallel()
	e := setup(t)
	msg := fetchResult(t, 42, "http://Example.COM:8080/a?b=1", "timeout")
	if err := e.pub.Publish(t.Context(), e.topo.PagesExchange(), pipeline.KeyPage, msg); err != nil {
		t.Fatal(err)
	}
	ch, err := e.raw.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	testenv.Eventually(t, 20*time.Second, 10*time.Millisecond, "the delivery limit", func() bool {
		d, ok, err := ch.Get(e.topo.PagesQueue(), false)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			_ = d.Nack(false, true)
			return false
		}
		got, err := e.db.DeadLetters(t.Context(), store.DeadLetterFilter{})
		return err == nil && len(got) == 1
	})
	dl := e.rows(t, store.DeadLetterFilter{TargetID: 42}, 1)[0]
	if dl.Reason != "delivery_limit" || dl.OriginalQueue != e.topo.PagesQueue() || dl.MessageType != message.TypeFetchResult ||
		dl.Host != "example.com:8080" || dl.ErrorClass != "timeout" || dl.TargetID == nil || *dl.TargetID != 42 ||
		!strings.Contains(dl.Summary, "boom") {
		t.Fatalf("dead letter = %+v", dl)
	}
	if c, err := e.svc.RequeueAll(t.Context(), store.DeadLetterFilter{TargetID: 42}); err != nil || c != (deadletter.RequeueCounts{Requeued: 1}) {
		t.Fatalf("RequeueAll = %+v, %v", c, err)
	}
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "the message back on pages", func() bool {
		return testenv.QueueDepth(t, e.raw, e.topo.PagesQueue()) == 1
	})
}

// delivery builds a dead-lettered delivery as the broker would hand it over.
func delivery(body []byte, queue string, extra amqp.Table) pipeline.Delivery {
	h := amqp.Table{"x-death": []any{amqp.Table{"reason": "rejected", "queue": queue, "exchange": "ex", "count": int64(1),
		"routing-keys": []any{"rk"}, "time": time.Unix(1700000000, 0)}}}
	for k, v := range extra {
		h[k] = v
	}
	return pipeline.WrapDelivery(amqp.Delivery{Headers: h, Body: body, MessageId: message.NewID(), Type: "x"})
}

func TestMirrorStoresOnceAndSurvivesHostileHeaders(t *testing.T) {
	t.Parallel()
	db, _ := testenv.Store(t)
	d := delivery([]byte{0xff, 0x00, 0xfe}, "q", amqp.Table{"bin\x00": []byte{0xff, 0x00}, "nul": "a\x00b",
		"nested": amqp.Table{"deep": []any{"x\x00", int32(3)}}, "dec": amqp.Decimal{Scale: 2, Value: 314}})
	dl := deadletter.FromDelivery(d, time.Now())
	id1, ins1, err := db.InsertDeadLetter(t.Context(), dl)
	if err != nil || !ins1 {
		t.Fatalf("first insert = %d %t %v", id1, ins1, err)
	}
	// A redelivery (the mirror died between commit and ack) is recognised.
	id2, ins2, err := db.InsertDeadLetter(t.Context(), deadletter.FromDelivery(d, time.Now().Add(time.Minute)))
	if err != nil || ins2 || id2 != id1 {
		t.Fatalf("redelivered insert = %d %t %v, want %d false nil", id2, ins2, err, id1)
	}
	got, err := db.DeadLetter(t.Context(), id1)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Body) != string(d.Body) || got.ErrorClass != "undecodable" || !strings.Contains(string(got.Headers), `"base64"`) {
		t.Fatalf("stored %+v headers %s", got, got.Headers)
	}
}

func TestPurgeByFilter(t *testing.T) {
	t.Parallel()
	db, _ := testenv.Store(t)
	svc := &deadletter.Service{Store: db}
	mk := func(target int64, u, class string) {
		t.Helper()
		fr := message.FetchResult{Envelope: message.NewEnvelope(message.TypeFetchResult), TargetID: target, URL: u, ErrorClass: class,
			Text: "page text"}
		b, err := message.EncodeFetchResult(fr) // a frame, as crawlers publish results now
		if class == "dns" {
			b, err = message.Encode(fr) // plain JSON, as older crawlers did
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.InsertDeadLetter(t.Context(), deadletter.FromDelivery(delivery(b, "q", nil), time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	mk(1, "http://a.test/1", "timeout")
	mk(1, "http://b.test/1", "dns")
	mk(2, "http://a.test/2", "timeout")
	mk(2, "http://a.test/3", "dns")
	for _, tc := range []struct {
		f    store.DeadLetterFilter
		want int
	}{
		{store.DeadLetterFilter{TargetID: 3}, 0},
		{store.DeadLetterFilter{TargetID: 1, ErrorClass: "dns"}, 1},
		{store.DeadLetterFilter{Host: "a.test"}, 2}, // a.test/1 and a.test/2; a.test/3 (dns, target 2) next
		{store.DeadLetterFilter{}, 1},
	} {
		if tc.f.Host == "a.test" {
			tc.f.ErrorClass = "timeout"
		}
		n, err := svc.Purge(t.Context(), tc.f)
		if err != nil || n != tc.want {
			t.Fatalf("Purge(%+v) = %d, %v; want %d", tc.f, n, err, tc.want)
		}
	}
	if rest, _ := svc.List(t.Context(), store.DeadLetterFilter{}); len(rest) != 0 {
		t.Fatalf("rows left after purging all: %+v", rest)
	}
}

func TestRequeueFailuresKeepTheRow(t *testing.T) {
	t.Parallel()
	e := setup(t)
	id, _, err := e.db.InsertDeadLetter(t.Context(), deadletter.FromDelivery(delivery([]byte(`{}`), "q", amqp.Table{}), time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	// "ex" does not exist on the broker: the publish fails and the row stays.
	n, err := e.svc.Requeue(t.Context(), []int64{id, 999999})
	if n != 0 || err == nil || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Requeue = %d, %v; want 0 and a joined error with ErrNotFound", n, err)
	}
	if _, err := e.db.DeadLetter(t.Context(), id); err != nil {
		t.Fatalf("row after failed requeue: %v", err)
	}
}

// Anything published straight into the dead-letter exchange (no x-death, binary body, hostile
// headers) is stored and acked, never looped.
func TestMirrorStoresWhateverArrives(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ch, err := e.raw.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	body := []byte{0x00, 0xff, 'x'}
	if err := ch.PublishWithContext(t.Context(), e.topo.DeadLetterExchange(), "", false, false, amqp.Publishing{
		Body: body, Headers: amqp.Table{"k\x00": "v\x00", "bin": []byte{0xff}, "x-death": "not a list"},
	}); err != nil {
		t.Fatal(err)
	}
	dl := e.rows(t, store.DeadLetterFilter{}, 1)[0]
	if dl.ErrorClass != "undecodable" || dl.Size != len(body) || dl.Exchange != e.topo.DeadLetterExchange() {
		t.Fatalf("dead letter = %+v", dl)
	}
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, "an empty dead-letter queue", func() bool {
		return testenv.QueueDepth(t, e.raw, e.topo.DeadLetterQueue()) == 0
	})
}

// A message of several crawl jobs or fetch results is described by its first item and says how
// many it holds.
func TestMessagesOfSeveralItemsAreDescribed(t *testing.T) {
	t.Parallel()
	var jobs []message.CrawlJob
	var parts [][]byte
	for i, u := range []string{"http://a.example/1", "http://a.example/2", "http://a.example/3"} {
		jobs = append(jobs, message.CrawlJob{Envelope: message.NewEnvelope(message.TypeCrawlJob), Kind: message.KindPage,
			URLID: int64(i + 1), TargetID: 7, URL: u})
		b, err := message.EncodeFetchResult(message.FetchResult{Envelope: message.NewEnvelope(message.TypeFetchResult),
			Kind: message.KindPage, TargetID: 8, URL: u, Status: 500, Error: "boom"})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, b)
	}
	msgs, err := message.JobMessages(jobs, 8)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("JobMessages = %d messages, %v", len(msgs), err)
	}
	for _, tc := range []struct {
		body     []byte
		typ      string
		target   int64
		contains string
	}{
		{msgs[0].Body, message.TypeCrawlJobs, 7, "crawl.jobs of 3, the first: http://a.example/1"},
		{message.PackResults(parts), message.TypeFetchResults, 8, "fetch.results of 3, the first: 500 http://a.example/1: boom"},
	} {
		dl := deadletter.FromDelivery(delivery(tc.body, "q", nil), time.Now())
		if dl.MessageType != tc.typ || dl.TargetID == nil || *dl.TargetID != tc.target || dl.URL != "http://a.example/1" ||
			dl.Host != "a.example" || !strings.Contains(dl.Summary, tc.contains) {
			t.Errorf("dead letter = %+v, want type %s, target %d, summary with %q", dl, tc.typ, tc.target, tc.contains)
		}
	}
}

// waitingStore is the real store, with a pause before every page RequeueAll reads after its
// first: it waits until every message requeued so far has died again and is back in the table,
// so the test does not depend on how fast the broker and the mirror are.
type waitingStore struct {
	*store.Store
	pages int
	back  func()
}

func (s *waitingStore) DeadLetters(ctx context.Context, f store.DeadLetterFilter) ([]store.DeadLetter, error) {
	if s.pages++; s.pages > 1 {
		s.back()
	}
	return s.Store.DeadLetters(ctx, f)
}

// TestRequeueAllEndsOnPermanentPoison: every requeued message is rejected again at once by its
// consumer (permanent poison), so it comes back as a new dead letter with a higher id while
// requeue-all is still running. Requeue-all works on the letters that existed when it started:
// it ends, counts what it did, and the letters that came back show how often they were
// requeued. Once before the fix, it requeued the returning letters until the client gave up.
func TestRequeueAllEndsOnPermanentPoison(t *testing.T) {
	t.Parallel()
	e := setup(t)
	const poison = 30
	for i := range poison {
		msg := message.Encoded{ID: "poison-" + strconv.Itoa(i), Body: []byte("{not json " + strconv.Itoa(i))}
		if err := e.pub.Publish(t.Context(), e.topo.CrawlExchange(), pipeline.KeyJob, msg); err != nil {
			t.Fatal(err)
		}
	}
	// A consumer that rejects everything it gets, as a worker does with poison.
	ch, err := e.raw.Channel()
	if err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(e.topo.CrawlQueue(), "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for d := range deliveries {
			_ = d.Reject(false)
		}
	})
	t.Cleanup(func() {
		_ = ch.Close()
		wg.Wait()
	})
	// One letter that cannot be requeued: it does not say where it was published.
	if _, _, err := e.db.InsertDeadLetter(t.Context(), store.DeadLetter{Fingerprint: "no-origin", Body: []byte("x"),
		Reason: "rejected", Summary: "no origin", Headers: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	all := func() []store.DeadLetter {
		rows, err := e.db.DeadLetters(t.Context(), store.DeadLetterFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	e.rows(t, store.DeadLetterFilter{}, poison+1)
	waiting := &waitingStore{Store: e.db, back: func() {
		testenv.Eventually(t, 20*time.Second, 20*time.Millisecond, "the requeued letters back", func() bool {
			return len(all()) == poison+1
		})
	}}
	svc := &deadletter.Service{Store: waiting, Publisher: e.svc.Publisher}

	for round := 1; round <= 2; round++ {
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		got, err := svc.RequeueAll(ctx, store.DeadLetterFilter{})
		ended := ctx.Err()
		cancel()
		if diff := cmp.Diff(deadletter.RequeueCounts{Requeued: poison, Failed: 1}, got); diff != "" {
			t.Fatalf("round %d: RequeueAll counts (-want +got):\n%s", round, diff)
		}
		if !errors.Is(err, deadletter.ErrNoOrigin) || ended != nil {
			t.Fatalf("round %d: RequeueAll error %v (context %v), want only the letter without an origin", round, err, ended)
		}
		waiting.back()
		requeues := map[int]int{}
		for _, d := range all() {
			requeues[d.Requeues]++
		}
		if diff := cmp.Diff(map[int]int{0: 1, round: poison}, requeues); diff != "" {
			t.Fatalf("round %d: dead letters by requeue count (-want +got):\n%s", round, diff)
		}
		waiting.pages = 0
	}
}

// TestRequeuesHeaderIsRead: the requeue count a message carries becomes the dead letter's;
// anything but a non-negative integer counts as no requeue.
func TestRequeuesHeaderIsRead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		value any
		want  int
	}{
		{nil, 0},
		{int64(1), 1},
		{int32(7), 7},
		{int16(2), 2},
		{int8(3), 3},
		{int64(-4), 0},
		{int64(1) << 40, math.MaxInt32},
		{"5", 0},
		{1.5, 0},
	} {
		extra := amqp.Table{}
		if tc.value != nil {
			extra[deadletter.RequeuesHeader] = tc.value
		}
		if got := deadletter.FromDelivery(delivery([]byte(`{}`), "q", extra), time.Now()).Requeues; got != tc.want {
			t.Errorf("header %#v: Requeues = %d, want %d", tc.value, got, tc.want)
		}
	}
}
