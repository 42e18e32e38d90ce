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

	"github.com/trawlhq/trawl/frontier"
	"github.com/trawlhq/trawl/internal/testenv"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/process"
	"github.com/trawlhq/trawl/store"
)

// The processor acks a committed batch with one "multiple" ack. Poison messages in the middle
// of a batch must still be dead-lettered, not swept up by that ack, and every good result must
// be stored and acked (one with a huge content type too): after the consumer stops, nothing
// returns to the queue.
func TestProcessorBatchesAckEverythingAndDeadLetterPoison(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := testenv.Store(t)
	topo, raw := testenv.Broker(t)
	conn := testenv.Dial(t, "processor-test")
	pub := pipeline.NewPublisher(conn, testenv.Logger(t))
	defer pub.Close()

	const n = 120
	tg, err := s.CreateTarget(ctx, store.NewTarget{Name: "acks", SeedURL: "http://acks.test/", SeedHost: "acks.test",
		Scope: "host", MaxDepth: 2, MaxPages: 1000, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	pol := process.Policy{RetryBase: time.Millisecond, RetryMax: time.Millisecond, Canon: frontier.Default}
	lim := store.DispatchLimits{MaxInFlight: 2 * n, HostMaxInFlight: 2 * n, Hosts: 10, Lease: time.Hour}
	seed, err := s.Dispatch(ctx, lim)
	if err != nil || len(seed) != 1 {
		t.Fatalf("Dispatch(seed) = %v, %v", seed, err)
	}
	links := make([]string, n)
	for i := range links {
		links[i] = fmt.Sprintf("http://acks.test/p/%d", i)
	}
	if _, err := s.ApplyResults(ctx, []store.Result{{URLID: seed[0].URLID, TargetID: tg.ID, URL: seed[0].URL,
		Status: 200, ContentType: "text/html", Links: links, ContentHash: "seed", StartedAt: time.Now()}}, pol); err != nil {
		t.Fatal(err)
	}
	jobs, err := s.Dispatch(ctx, lim)
	if err != nil || len(jobs) != n {
		t.Fatalf("Dispatch = %d jobs, %v; want %d", len(jobs), err, n)
	}

	// A frame whose text block claims to expand beyond the message limit.
	meta := []byte(`{"type":"fetch.result","v":1,"id":"bomb","kind":"page"}`)
	bomb := append([]byte{0, 'T', 'R', 'F'}, binary.AppendUvarint(nil, uint64(len(meta)))...)
	bomb = binary.AppendUvarint(append(bomb, meta...), pipeline.MaxMessageBytes+1)
	poison := map[int]pipeline.Message{
		7:  {ID: "poison-json", Type: pipeline.TypeFetchResult, Body: []byte(`{"type":"fetch.result","v":1,"id":`)},
		60: {ID: "poison-bomb", Type: pipeline.TypeFetchResult, Body: bomb},
	}
	var msgs []pipeline.Message
	for i, j := range jobs {
		if m, ok := poison[i]; ok {
			msgs = append(msgs, m)
		}
		fr := pipeline.FetchResult{Envelope: pipeline.NewEnvelope(pipeline.TypeFetchResult), Kind: pipeline.KindPage,
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
		body, err := pipeline.EncodeFetchResult(fr)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, pipeline.Message{ID: fr.ID, Type: fr.Type, Body: body})
	}
	if err := pub.Publish(ctx, topo.PagesExchange(), pipeline.KeyPage, msgs...); err != nil {
		t.Fatal(err)
	}

	proc := &process.Processor{Store: s, Robots: s, Sitemaps: s, Policy: pol, BatchSize: 16, BatchWait: 20 * time.Millisecond,
		Log: testenv.Logger(t)}
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

	got, err := s.Target(ctx, tg.ID)
	if err != nil || got.URLsDone != n+1 || got.URLsFailed != 0 {
		t.Fatalf("target = %+v, %v; want %d done", got, err, n+1)
	}
	// Unacked deliveries would be back in the queue now that the channel is closed.
	if d := testenv.QueueDepth(t, raw, topo.PagesQueue()); d != 0 {
		t.Fatalf("pages queue holds %d messages after the processor stopped, want 0 (all acked)", d)
	}
	dead := map[string]string{}
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "both poison messages dead-lettered", func() bool {
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
