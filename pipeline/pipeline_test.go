package pipeline_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/test/testenv"
)

func job(t *testing.T, url string) message.Encoded {
	t.Helper()
	j := message.CrawlJob{Envelope: message.NewEnvelope(message.TypeCrawlJob), Kind: message.KindPage, URL: url, URLID: 1, TargetID: 1}
	b, err := message.Encode(j)
	if err != nil {
		t.Fatal(err)
	}
	return message.Encoded{ID: j.ID, Type: message.TypeCrawlJob, Body: b}
}

func TestPublishConfirmAndConsume(t *testing.T) {
	t.Parallel()
	topo, raw := testenv.Broker(t)
	pub := pipeline.NewPublisher(testenv.Dial(t, "pub"), testenv.Logger(t))
	defer pub.Close()
	msgs := []message.Encoded{job(t, "http://a/1"), job(t, "http://a/2"), job(t, "http://a/3")}
	if err := pub.Publish(t.Context(), topo.CrawlExchange(), pipeline.KeyJob, msgs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if n := testenv.QueueDepth(t, raw, topo.CrawlQueue()); n != 3 {
		t.Fatalf("queue depth = %d, want 3", n)
	}
	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan string, 3)
	cons := &pipeline.Consumer{Conn: testenv.Dial(t, "cons"), Queue: topo.CrawlQueue(), Prefetch: 10, Topology: topo, Log: testenv.Logger(t)}
	done := make(chan error, 1)
	go func() {
		done <- cons.Run(ctx, func(ds pipeline.Deliveries) {
			for d := range ds {
				var j message.CrawlJob
				if err := message.Decode(d.Body, message.TypeCrawlJob, &j); err != nil {
					t.Errorf("decode: %v", err)
				}
				if !d.Persistent {
					t.Error("delivery not persistent")
				}
				_ = d.Ack(false)
				got <- j.URL
			}
		})
	}()
	for range 3 {
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("timed out waiting for deliveries")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := testenv.QueueDepth(t, raw, topo.CrawlQueue()); n != 0 {
		t.Fatalf("queue depth after acks = %d, want 0", n)
	}
}

func TestUnroutablePublishFails(t *testing.T) {
	t.Parallel()
	topo, _ := testenv.Broker(t)
	pub := pipeline.NewPublisher(testenv.Dial(t, "pub"), testenv.Logger(t))
	defer pub.Close()
	err := pub.Publish(t.Context(), topo.CrawlExchange(), "no-such-key", job(t, "http://a/"))
	if !errors.Is(err, pipeline.ErrReturned) {
		t.Fatalf("Publish to unbound key = %v, want ErrReturned", err)
	}
	// The publisher stays usable.
	if err := pub.Publish(t.Context(), topo.CrawlExchange(), pipeline.KeyJob, job(t, "http://a/")); err != nil {
		t.Fatalf("Publish after return: %v", err)
	}
}

func TestPublisherReconnects(t *testing.T) {
	t.Parallel()
	topo, raw := testenv.Broker(t)
	conn := testenv.Dial(t, "pub")
	pub := pipeline.NewPublisher(conn, testenv.Logger(t))
	defer pub.Close()
	if err := pub.Publish(t.Context(), topo.CrawlExchange(), pipeline.KeyJob, job(t, "http://a/1")); err != nil {
		t.Fatal(err)
	}
	c, err := conn.Connection(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close() // as if the broker dropped us
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, "publish after reconnect", func() bool {
		return pub.Publish(t.Context(), topo.CrawlExchange(), pipeline.KeyJob, job(t, "http://a/2")) == nil
	})
	if n := testenv.QueueDepth(t, raw, topo.CrawlQueue()); n != 2 {
		t.Fatalf("queue depth = %d, want 2", n)
	}
}

func TestRejectedPoisonIsDeadLettered(t *testing.T) {
	t.Parallel()
	topo, raw := testenv.Broker(t)
	pub := pipeline.NewPublisher(testenv.Dial(t, "pub"), testenv.Logger(t))
	defer pub.Close()
	if err := pub.Publish(t.Context(), topo.CrawlExchange(), pipeline.KeyJob, message.Encoded{ID: "poison", Body: []byte("{not json")}); err != nil {
		t.Fatal(err)
	}
	ch, _ := raw.Channel()
	defer ch.Close()
	d, ok, err := ch.Get(topo.CrawlQueue(), false)
	if err != nil || !ok {
		t.Fatalf("get: %v %v", ok, err)
	}
	var j message.CrawlJob
	if err := message.Decode(d.Body, message.TypeCrawlJob, &j); !errors.Is(err, message.ErrPermanent) {
		t.Fatalf("message.Decode(poison) = %v, want ErrPermanent", err)
	}
	_ = d.Reject(false)
	dl := testenv.Get(t, raw, topo.DeadLetterQueue(), true)
	reason, queue := testenv.XDeath(t, dl)
	if reason != "rejected" || queue != topo.CrawlQueue() || string(dl.Body) != "{not json" {
		t.Fatalf("dead letter reason=%q queue=%q body=%q", reason, queue, dl.Body)
	}
}

func TestDeliveryLimitDeadLetters(t *testing.T) {
	t.Parallel()
	topo, raw := testenv.Broker(t) // delivery limit 3
	pub := pipeline.NewPublisher(testenv.Dial(t, "pub"), testenv.Logger(t))
	defer pub.Close()
	if err := pub.Publish(t.Context(), topo.PagesExchange(), pipeline.KeyPage, message.Encoded{ID: "x", Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	ch, _ := raw.Channel()
	defer ch.Close()
	deliveries := 0
	for deliveries < 10 {
		d, ok, err := ch.Get(topo.PagesQueue(), false)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			if testenv.QueueDepth(t, raw, topo.DeadLetterQueue()) > 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		deliveries++
		_ = d.Nack(false, true)
	}
	if deliveries < 3 || deliveries > 4 {
		t.Fatalf("delivered %d times before dead-lettering, want the limit (3) or limit+1", deliveries)
	}
	if reason, _ := testenv.XDeath(t, testenv.Get(t, raw, topo.DeadLetterQueue(), true)); reason != "delivery_limit" {
		t.Fatalf("reason = %q, want delivery_limit", reason)
	}
}

func TestDeclareIsIdempotentAndDetectsMismatch(t *testing.T) {
	t.Parallel()
	topo, raw := testenv.Broker(t)
	ch, _ := raw.Channel()
	defer ch.Close()
	if err := topo.Declare(ch); err != nil {
		t.Fatalf("redeclare: %v", err)
	}
	other := topo
	other.DeliveryLimit = topo.DeliveryLimit + 1
	if err := other.Declare(ch); err == nil {
		t.Fatal("declare with a different delivery limit succeeded, want PRECONDITION_FAILED")
	}
}
