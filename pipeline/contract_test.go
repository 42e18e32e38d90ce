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

// A publish whose context ends, while its message is being written or while it waits for the
// confirm, ends only the call: the other channels of its connection stay open, the connection
// is not redialled, and the publisher goes on working on its channel.
func TestTimedOutPublishLeavesTheConnectionAlone(t *testing.T) {
	t.Parallel()
	topo, raw := testenv.Broker(t)
	conn := testenv.Dial(t, "timeout")
	results := pipeline.NewPublisher(conn, testenv.Logger(t))
	defer results.Close()
	replies := pipeline.NewPublisher(conn, testenv.Logger(t))
	defer replies.Close()
	if err := replies.Publish(t.Context(), topo.CrawlExchange(), pipeline.KeyJob, job(t, "http://a/reply")); err != nil {
		t.Fatal(err)
	}
	amqpConn, err := conn.Connection(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	other, err := amqpConn.Channel() // stands for any other user of the connection
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	big := make([]byte, 8<<20) // written in milliseconds: a short timeout ends during the write or the wait
	timedOut := 0
	for _, timeout := range []time.Duration{100 * time.Microsecond, time.Millisecond, 3 * time.Millisecond, 10 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		err := results.Publish(ctx, topo.PagesExchange(), pipeline.KeyPage, message.Encoded{ID: message.NewID(), Type: "test", Body: big})
		cancel()
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			timedOut++
		case err != nil:
			t.Fatalf("publish with a %s timeout = %v, want nil or the context's error", timeout, err)
		}
	}
	if timedOut == 0 {
		t.Fatal("no publish timed out; the test checks nothing")
	}
	if other.IsClosed() {
		t.Error("a timed-out publish closed another channel of its connection")
	}
	if again, err := conn.Connection(t.Context()); err != nil || again != amqpConn {
		t.Errorf("a timed-out publish cut the connection (redialled: %v, err %v)", again != amqpConn, err)
	}
	for _, p := range []*pipeline.Publisher{results, replies} {
		if err := p.Publish(t.Context(), topo.CrawlExchange(), pipeline.KeyJob, job(t, "http://a/after")); err != nil {
			t.Errorf("publish after the timeouts: %v", err)
		}
	}
	if n := testenv.QueueDepth(t, raw, topo.CrawlQueue()); n != 3 {
		t.Errorf("crawl queue depth = %d, want 3", n)
	}
}

// consume runs a Consumer of queue until settle has run: settle gets the first n deliveries
// with their channel open, and then whatever else the channel delivers within a second (each
// left unsettled, so it returns to the queue when the channel closes).
func consume(t *testing.T, topo pipeline.Topology, queue string, n int, settle func(ds []pipeline.Delivery, more <-chan pipeline.Delivery)) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cons := &pipeline.Consumer{Conn: testenv.Dial(t, "consume"), Queue: queue, Prefetch: 10, Topology: topo, Log: testenv.Logger(t)}
	done := make(chan error, 1)
	go func() {
		done <- cons.Run(ctx, func(stream pipeline.Deliveries) {
			var ds []pipeline.Delivery
			for len(ds) < n {
				d, ok := <-stream
				if !ok {
					t.Error("stream closed before the deliveries came")
					return
				}
				ds = append(ds, d)
			}
			more := make(chan pipeline.Delivery, 10)
			go func() {
				for d := range stream {
					more <- d
				}
				close(more)
			}()
			settle(ds, more)
			cancel()
			for range more { // drain until the stream closes
			}
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("consumer did not stop")
	}
}

func publishJobs(t *testing.T, topo pipeline.Topology, n int) []string {
	t.Helper()
	pub := pipeline.NewPublisher(testenv.Dial(t, "jobs"), testenv.Logger(t))
	defer pub.Close()
	ids := make([]string, n)
	for i := range ids {
		j := job(t, "http://a/"+message.NewID())
		ids[i] = j.ID
		if err := pub.Publish(t.Context(), topo.CrawlExchange(), pipeline.KeyJob, j); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// On the broker, Done acks wait for the lowest delivery and then settle exactly the done ones
// with one multiple-ack: the requeued delivery comes back, the acked ones never do.
func TestSettlerOnTheBroker(t *testing.T) {
	t.Parallel()
	topo, raw := testenv.Broker(t)
	ids := publishJobs(t, topo, 5)
	consume(t, topo, topo.CrawlQueue(), 5, func(ds []pipeline.Delivery, more <-chan pipeline.Delivery) {
		for _, d := range []pipeline.Delivery{ds[2], ds[1], ds[4], ds[3]} {
			if err := d.Done(); err != nil {
				t.Fatal(err)
			}
		}
		if err := ds[0].Requeue(); err != nil {
			t.Fatal(err)
		}
		select {
		case d := <-more:
			if d.MessageID != ids[0] || !d.Redelivered {
				t.Errorf("redelivered %s (redelivered %v), want the requeued %s", d.MessageID, d.Redelivered, ids[0])
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the requeued delivery did not come back")
		}
		select {
		case d := <-more:
			t.Errorf("a done delivery came back: %s", d.MessageID)
		case <-time.After(time.Second):
		}
	})
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, "the requeued job alone in the queue", func() bool {
		return testenv.QueueDepth(t, raw, topo.CrawlQueue()) == 1
	})

	// A batch reported done together is acked as a whole.
	publishJobs(t, topo, 3)
	consume(t, topo, topo.CrawlQueue(), 4, func(ds []pipeline.Delivery, _ <-chan pipeline.Delivery) {
		if err := pipeline.DoneAll(ds); err != nil {
			t.Fatal(err)
		}
	})
	if n := testenv.QueueDepth(t, raw, topo.CrawlQueue()); n != 0 {
		t.Errorf("queue depth after DoneAll = %d, want 0", n)
	}
}

// Split publishes the parts and acks the original; when the parts cannot be published, the
// original goes back whole and no part is acked away.
func TestSplitOnTheBroker(t *testing.T) {
	t.Parallel()
	topo, raw := testenv.Broker(t)
	publishJobs(t, topo, 1)
	pub := pipeline.NewPublisher(testenv.Dial(t, "split"), testenv.Logger(t))
	defer pub.Close()
	parts := []message.Encoded{job(t, "http://a/1"), job(t, "http://a/2"), job(t, "http://a/3")}

	consume(t, topo, topo.CrawlQueue(), 1, func(ds []pipeline.Delivery, more <-chan pipeline.Delivery) {
		err := pipeline.Split(t.Context(), pub, ds[0], "no-such-exchange-"+message.NewID(), "k", parts)
		if !errors.Is(err, pipeline.ErrNotSplit) {
			t.Errorf("Split to a missing exchange = %v, want ErrNotSplit", err)
		}
		select {
		case d := <-more:
			if !d.Redelivered {
				t.Error("the original came back not marked redelivered")
			}
			if err := pipeline.Split(t.Context(), pub, d, topo.PagesExchange(), pipeline.KeyPage, parts); err != nil {
				t.Errorf("Split: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("the original did not come back after a failed split")
		}
	})
	if n := testenv.QueueDepth(t, raw, topo.CrawlQueue()); n != 0 {
		t.Errorf("crawl queue depth after the split = %d, want 0 (the original acked)", n)
	}
	if n := testenv.QueueDepth(t, raw, topo.PagesQueue()); n != len(parts) {
		t.Errorf("pages queue depth = %d, want %d parts", n, len(parts))
	}
}
