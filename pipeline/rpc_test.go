package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/test/testenv"
)

// echoServer answers every re-crawl request after delay, replying with the request's id and URL
// id, until the test ends. It counts the requests it took.
func echoServer(t *testing.T, topo pipeline.Topology, delay time.Duration) *atomic.Int64 {
	return echoServerDelay(t, topo, delay)
}

func echoServerTB(tb testing.TB, topo pipeline.Topology) *atomic.Int64 {
	return echoServerDelay(tb, topo, 0)
}

func echoServerDelay(t testing.TB, topo pipeline.Topology, delay time.Duration) *atomic.Int64 {
	t.Helper()
	var served atomic.Int64
	replies := pipeline.NewPublisher(testenv.Dial(t, "rpc-server-pub"), testenv.Logger(t))
	cons := &pipeline.Consumer{Conn: testenv.Dial(t, "rpc-server"), Queue: topo.RecrawlQueue(), Prefetch: 4, Topology: topo, Log: testenv.Logger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = cons.Run(ctx, func(ds pipeline.Deliveries) {
			for d := range ds {
				req, err := message.DecodeRecrawlRequest(d.Body)
				if err != nil {
					t.Errorf("server: %v", err)
					_ = d.Reject(false)
					continue
				}
				served.Add(1)
				select {
				case <-time.After(delay):
				case <-ctx.Done():
				}
				reply := message.RecrawlReply{Envelope: message.NewEnvelope(message.TypeRecrawlReply),
					RequestID: req.RequestID, URLID: req.URLID, Worker: "echo", Status: 200, Fetched: true, Changed: true}
				if err := replies.Reply(ctx, d.ReplyTo, d.CorrelationID, reply); err != nil && ctx.Err() == nil {
					t.Errorf("server reply: %v", err)
				}
				_ = d.Ack(false)
			}
		})
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		_ = replies.Close()
	})
	return &served
}

// eventuallyAnswered waits until a call through client gets its reply.
func eventuallyAnswered(t *testing.T, client *pipeline.RPCClient, what string) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, 50*time.Millisecond, what, func() bool {
		_, err := client.Call(t.Context(), request(message.NewID(), 2))
		return err == nil
	})
}

func request(id string, urlID int64) message.RecrawlRequest {
	return message.RecrawlRequest{RequestID: id, URLID: urlID, TargetID: 1, URL: "http://example.test/"}
}

func TestRPCRoundTrip(t *testing.T) {
	t.Parallel()
	topo, _ := testenv.Broker(t)
	echoServer(t, topo, 0)
	client := pipeline.NewRPCClient(testenv.Dial(t, "rpc-client"), topo, 10*time.Second, testenv.Logger(t))
	defer client.Close()
	for i := range 3 {
		id := message.NewID()
		reply, err := client.Call(t.Context(), request(id, int64(i+1)))
		if err != nil {
			t.Fatalf("Call %d: %v", i, err)
		}
		if reply.RequestID != id || reply.URLID != int64(i+1) || reply.Status != 200 || reply.Worker != "echo" {
			t.Fatalf("reply %d = %+v", i, reply)
		}
	}
}

func TestRPCConcurrentCallsGetTheirOwnReplies(t *testing.T) {
	t.Parallel()
	topo, _ := testenv.Broker(t)
	echoServer(t, topo, 0)
	client := pipeline.NewRPCClient(testenv.Dial(t, "rpc-client"), topo, 10*time.Second, testenv.Logger(t))
	defer client.Close()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			id := message.NewID()
			reply, err := client.Call(t.Context(), request(id, int64(i+1)))
			if err != nil {
				t.Errorf("Call %d: %v", i, err)
				return
			}
			if reply.RequestID != id || reply.URLID != int64(i+1) {
				t.Errorf("call %d got reply %+v", i, reply)
			}
		})
	}
	wg.Wait()
}

func TestRPCTimeoutWithoutCrawler(t *testing.T) {
	t.Parallel()
	topo, raw := testenv.Broker(t)
	client := pipeline.NewRPCClient(testenv.Dial(t, "rpc-client"), topo, 300*time.Millisecond, testenv.Logger(t))
	defer client.Close()
	_, err := client.Call(t.Context(), request(message.NewID(), 1))
	if !errors.Is(err, pipeline.ErrRPCTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call without crawler = %v, want ErrRPCTimeout wrapping DeadlineExceeded", err)
	}
	if errors.Is(err, pipeline.ErrNotSent) {
		t.Fatalf("timeout after a confirmed publish reported as not sent: %v", err)
	}
	if !strings.Contains(err.Error(), "is a crawler running") {
		t.Fatalf("timeout error %q does not say what to check", err)
	}
	// The request was accepted and waits for a crawler.
	if n := testenv.QueueDepth(t, raw, topo.RecrawlQueue()); n != 1 {
		t.Fatalf("rpc queue depth = %d, want 1", n)
	}
}

func TestRPCTimeoutWithSlowCrawler(t *testing.T) {
	t.Parallel()
	topo, _ := testenv.Broker(t)
	served := echoServer(t, topo, 2*time.Second)
	client := pipeline.NewRPCClient(testenv.Dial(t, "rpc-client"), topo, time.Minute, testenv.Logger(t))
	defer client.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	_, err := client.Call(ctx, request(message.NewID(), 1))
	if !errors.Is(err, pipeline.ErrRPCTimeout) {
		t.Fatalf("Call = %v, want ErrRPCTimeout", err)
	}
	if served.Load() != 1 {
		t.Fatalf("server took %d requests, want 1", served.Load())
	}
	// The late reply finds no waiting call and is dropped; the client keeps working.
	eventuallyAnswered(t, client, "a call after the late reply")
}

func TestRPCReconnects(t *testing.T) {
	t.Parallel()
	topo, _ := testenv.Broker(t)
	echoServer(t, topo, 0)
	conn := testenv.Dial(t, "rpc-client")
	client := pipeline.NewRPCClient(conn, topo, 5*time.Second, testenv.Logger(t))
	defer client.Close()
	if _, err := client.Call(t.Context(), request(message.NewID(), 1)); err != nil {
		t.Fatalf("first Call: %v", err)
	}
	c, err := conn.Connection(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close() // as if the broker dropped the connection
	eventuallyAnswered(t, client, "a call after reconnecting")
}

func TestRPCUnroutableIsNotSent(t *testing.T) {
	t.Parallel()
	topo, raw := testenv.Broker(t)
	ch, err := raw.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.QueueUnbind(topo.RecrawlQueue(), pipeline.KeyRecrawl, topo.CrawlExchange(), nil); err != nil {
		t.Fatal(err)
	}
	client := pipeline.NewRPCClient(testenv.Dial(t, "rpc-client"), topo, 5*time.Second, testenv.Logger(t))
	defer client.Close()
	_, err = client.Call(t.Context(), request(message.NewID(), 1))
	if !errors.Is(err, pipeline.ErrNotSent) || !errors.Is(err, pipeline.ErrReturned) {
		t.Fatalf("Call to an unbound queue = %v, want ErrNotSent and ErrReturned", err)
	}
}

func TestRepublishReturnsAndReplyChecks(t *testing.T) {
	t.Parallel()
	s := pipeline.NewPublisher(testenv.Dial(t, "sender"), testenv.Logger(t))
	defer s.Close()
	err := s.Republish(t.Context(), "", "no-such-queue-"+message.NewID(), pipeline.Republished{Body: []byte("x")})
	if !errors.Is(err, pipeline.ErrReturned) {
		t.Fatalf("Republish to a missing queue = %v, want ErrReturned", err)
	}
	// A closed channel (publishing to a missing exchange) fails the publish and the next one reopens.
	err = s.Republish(t.Context(), "no-such-exchange-"+message.NewID(), "k", pipeline.Republished{Body: []byte("x")})
	if !errors.Is(err, pipeline.ErrChannelLost) {
		t.Fatalf("Republish to a missing exchange = %v, want ErrChannelLost", err)
	}
	if err := s.Reply(t.Context(), "", "x", message.RecrawlReply{}); err == nil {
		t.Fatal("Reply without reply_to succeeded")
	}
	// Replies are not mandatory (RabbitMQ 3.x returns every mandatory direct reply-to publish).
	if err := s.Reply(t.Context(), "amq.rabbitmq.reply-to.gone", "x", message.RecrawlReply{Envelope: message.NewEnvelope(message.TypeRecrawlReply)}); err != nil {
		t.Fatalf("Reply to a gone caller = %v, want nil (dropped by the broker)", err)
	}
}

func TestDecodeRecrawlRequest(t *testing.T) {
	t.Parallel()
	good := message.RecrawlRequest{Envelope: message.NewEnvelope(message.TypeRecrawlRequest), RequestID: "r1", URLID: 3, URL: "http://a/"}
	for _, tc := range []struct {
		name string
		mut  func(*message.RecrawlRequest)
		ok   bool
	}{
		{"good", func(*message.RecrawlRequest) {}, true},
		{"no request id", func(r *message.RecrawlRequest) { r.RequestID = "" }, false},
		{"no url", func(r *message.RecrawlRequest) { r.URL = "" }, false},
		{"no url id", func(r *message.RecrawlRequest) { r.URLID = 0 }, false},
		{"wrong type", func(r *message.RecrawlRequest) { r.Type = message.TypeCrawlJob }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := good
			tc.mut(&r)
			b, err := message.Encode(r)
			if err != nil {
				t.Fatal(err)
			}
			_, err = message.DecodeRecrawlRequest(b)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, message.ErrPermanent)) {
				t.Fatalf("message.DecodeRecrawlRequest = %v, want ok=%t (or message.ErrPermanent)", err, tc.ok)
			}
		})
	}
}

// BenchmarkRPCRoundTrip measures one re-crawl request and its reply through the broker
// (persistent confirmed request, direct reply-to, confirmed reply), with an instant server.
func BenchmarkRPCRoundTrip(b *testing.B) {
	topo, _ := testenv.Broker(b)
	served := echoServerTB(b, topo)
	client := pipeline.NewRPCClient(testenv.Dial(b, "rpc-client"), topo, 10*time.Second, testenv.Logger(b))
	defer client.Close()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := client.Call(b.Context(), request(message.NewID(), int64(i+1))); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if served.Load() == 0 {
		b.Fatal("nothing served")
	}
}
