package pipeline_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/trawlhq/trawl/metrics"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/test/testenv"
)

// deadBrokerURL returns an AMQP URL on a loopback port nobody listens on: dialing it is
// refused at once.
func deadBrokerURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "amqp://guest:guest@" + addr + "/"
}

// TestConnFailsOverToNextURL: with TRAWL_AMQP_URL listing a dead broker first, a Conn connects
// to the next one, and after losing that connection finds it again (passing the dead one on
// the way), counting a reconnect.
func TestConnFailsOverToNextURL(t *testing.T) {
	t.Parallel()
	topo, raw := testenv.Broker(t)
	conn, err := pipeline.NewConn(deadBrokerURL(t)+", "+testenv.AMQPURL(), "failover", testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pub := pipeline.NewPublisher(conn, testenv.Logger(t))
	defer pub.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := pub.Publish(ctx, topo.CrawlExchange(), pipeline.KeyJob, job(t, "http://a/1")); err != nil {
		t.Fatalf("publish with the first broker dead: %v", err)
	}
	before := testutil.ToFloat64(metrics.Reconnects)
	c, err := conn.Connection(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close() // the live broker drops us; the next dial tries the dead one first
	testenv.Eventually(t, 20*time.Second, 50*time.Millisecond, "publish after failover", func() bool {
		return pub.Publish(ctx, topo.CrawlExchange(), pipeline.KeyJob, job(t, "http://a/2")) == nil
	})
	if n := testenv.QueueDepth(t, raw, topo.CrawlQueue()); n != 2 {
		t.Fatalf("queue depth = %d, want 2", n)
	}
	if after := testutil.ToFloat64(metrics.Reconnects); after < before+1 {
		t.Errorf("trawl_broker_reconnects_total went from %v to %v, want at least one more", before, after)
	}
}

// TestConnAllBrokersDead: with every broker down, Connection keeps trying until its context
// ends, then says so.
func TestConnAllBrokersDead(t *testing.T) {
	t.Parallel()
	conn, err := pipeline.NewConn(deadBrokerURL(t)+","+deadBrokerURL(t), "dead", testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if _, err := conn.Connection(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connection = %v, want context.DeadlineExceeded", err)
	}
	if conn.Healthy() {
		t.Error("Healthy() with no broker")
	}
}

func TestDialURLList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		urls    string
		wantErr string
	}{
		{"amqp://a/, amqp://b:5673/vh ,amqps://c/", ""},
		{"amqp://a/,,", ""},
		{"", "no broker url"},
		{" , ", "no broker url"},
		{"amqp://a/,http://b/", "broker url"},
	}
	for _, tt := range tests {
		t.Run(tt.urls, func(t *testing.T) {
			t.Parallel()
			c, err := pipeline.NewConn(tt.urls, "x", testenv.Logger(t))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Dial(%q) = %v", tt.urls, err)
				}
				_ = c.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Dial(%q) = %v, want an error containing %q", tt.urls, err, tt.wantErr)
			}
		})
	}
}
