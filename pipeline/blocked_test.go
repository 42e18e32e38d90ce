package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/test/private"
	"github.com/trawlhq/trawl/test/testenv"
)

// TestPublishCutsBlockedWrite raises the memory alarm on a private broker node, so it stops
// reading the publishing connection, and publishes more than the socket buffers hold. The
// writes hang; when the publishes' context ends they must return (the connection is cut), and
// once the alarm clears the publisher works again on a new connection. Without this, a worker
// stopped during an alarm hangs in a write forever.
func TestPublishCutsBlockedWrite(t *testing.T) {
	t.Parallel()
	node := private.StartRabbit(t)
	log := testenv.Logger(t)
	topo := pipeline.Topology{Prefix: "blocked.", DeliveryLimit: 3}
	conn, err := pipeline.NewConn(node.URL(), "blocked-write-test", log)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := pipeline.DeclareTopology(t.Context(), conn, topo); err != nil {
		t.Fatal(err)
	}
	pub := pipeline.NewPublisher(conn, log)
	defer pub.Close()
	small := message.Encoded{ID: message.NewID(), Type: "test", Body: []byte("{}")}
	if err := pub.Publish(t.Context(), topo.PagesExchange(), pipeline.KeyPage, small); err != nil {
		t.Fatal(err)
	}

	node.SetMemoryWatermark("0.0000001")
	// The broker blocks a connection when it next publishes during the alarm.
	testenv.Eventually(t, 30*time.Second, 50*time.Millisecond, "the connection to be blocked", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		small.ID = message.NewID()
		_ = pub.Publish(ctx, topo.PagesExchange(), pipeline.KeyPage, small)
		return conn.Blocked()
	})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	const n = 4
	errs := make(chan error, n)
	body := make([]byte, 8<<20) // 4 × 8 MiB: far more than the socket buffers hold
	for range n {
		go func() {
			errs <- pub.Publish(ctx, topo.PagesExchange(), pipeline.KeyPage, message.Encoded{ID: message.NewID(), Type: "test", Body: body})
		}()
	}
	for range n {
		select {
		case err := <-errs:
			if err == nil {
				t.Error("a publish was confirmed while the broker blocked the connection")
			}
		case <-time.After(time.Minute):
			t.Fatal("publish still stuck a minute after its context ended")
		}
	}

	node.SetMemoryWatermark("0.4")
	testenv.Eventually(t, time.Minute, 200*time.Millisecond, "publishing to work again", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		small.ID = message.NewID()
		return pub.Publish(ctx, topo.PagesExchange(), pipeline.KeyPage, small) == nil
	})
}
