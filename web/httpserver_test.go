package web

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trawlhq/trawl/deadletter"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/test/testenv"
)

// serveLimited serves the dashboard (open mode, on a test database) through NewHTTPServer with
// limits l, on a real loopback listener.
func serveLimited(t *testing.T, l HTTPLimits) string {
	t.Helper()
	st, _ := testenv.Store(t)
	srv := &Server{Store: st, Log: testenv.Logger(t), RefreshInterval: 50 * time.Millisecond}
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = NewHTTPServer("", srv.Handler(), l)
	ts.Config.RegisterOnShutdown(srv.Shutdown)
	ts.Start()
	t.Cleanup(func() { srv.Shutdown(); ts.Close() })
	return ts.Listener.Addr().String()
}

func TestDefaultHTTPLimits(t *testing.T) {
	t.Parallel()
	for _, rt := range []time.Duration{time.Second, 15 * time.Second, 5 * time.Minute} {
		l := DefaultHTTPLimits(rt)
		if l.ReadHeaderTimeout <= 0 || l.ReadTimeout <= 0 || l.IdleTimeout <= 0 || l.MaxHeaderBytes <= 0 || l.WriteTimeout <= rt {
			t.Errorf("DefaultHTTPLimits(%s) = %+v: every limit must be set, the write timeout above the re-crawl timeout", rt, l)
		}
	}
}

// TestSlowBodyIsCutOff drips a login body one byte at a time over a real TCP connection: the
// server gives up when the read timeout passes instead of holding the connection open.
func TestSlowBodyIsCutOff(t *testing.T) {
	t.Parallel()
	l := DefaultHTTPLimits(time.Second)
	l.ReadTimeout = time.Second // shortened so the test is quick
	addr := serveLimited(t, l)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// Drip for up to 20 s; the server must hang up long before.
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, _ = io.Copy(io.Discard, conn)
	}()
	for i := 0; i < 100; i++ {
		select {
		case <-closed:
			return
		case <-time.After(200 * time.Millisecond):
		}
		if _, err := conn.Write([]byte("p")); err != nil {
			return // the server has closed the connection
		}
	}
	t.Fatal("a body dripping in for 20 s was still being read")
}

// TestEventStreamOutlivesTimeouts: a server-sent event stream keeps going past the server's read
// and write timeouts, because it moves its deadlines as it writes.
func TestEventStreamOutlivesTimeouts(t *testing.T) {
	t.Parallel()
	l := DefaultHTTPLimits(time.Second)
	l.ReadTimeout, l.WriteTimeout = time.Second, time.Second
	addr := serveLimited(t, l)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/events/overview", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	events := 0
	for time.Since(start) < 3*time.Second {
		if !sc.Scan() {
			t.Fatalf("the stream ended after %s and %d events: %v", time.Since(start).Round(time.Millisecond), events, errors.Join(sc.Err(), io.ErrUnexpectedEOF))
		}
		if strings.HasPrefix(sc.Text(), "event: overview") {
			events++
		}
	}
}

// TestHugeHeadersAreRefused: request headers beyond MaxHeaderBytes are answered 431.
func TestHugeHeadersAreRefused(t *testing.T) {
	t.Parallel()
	addr := serveLimited(t, DefaultHTTPLimits(time.Second))
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/healthz", nil)
	req.Header.Set("X-Padding", strings.Repeat("x", 200<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("200 KiB of headers = %d, want 431 (the limit is 64 KiB; Go's default is 1 MiB)", resp.StatusCode)
	}
}

// TestRequeueAllAnswersPastTheWriteTimeout: requeue-all publishes the dead letters one by one
// and can run longer than the server's write timeout (a minute by default, for thousands of
// letters). It must still answer, through the API and the page, instead of the connection
// closing without a response once the work is done. The write timeout here is a microsecond,
// which any handler that reads Postgres and publishes to RabbitMQ outlasts.
func TestRequeueAllAnswersPastTheWriteTimeout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, path, ctype, body string
		want                    int
	}{
		{"api", "/api/dead-letters/requeue-all", "application/json", `{}`, http.StatusOK},
		{"page", "/dead-letters/requeue-all", "application/x-www-form-urlencoded", ``, http.StatusSeeOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			topo, raw := testenv.Broker(t)
			st, _ := testenv.Store(t)
			sender := pipeline.NewPublisher(testenv.Dial(t, "web-dl-slow"), testenv.Logger(t))
			t.Cleanup(func() { _ = sender.Close() })
			for _, fp := range []string{"a", "b"} {
				if _, _, err := st.InsertDeadLetter(t.Context(), store.DeadLetter{Reason: "rejected", OriginalQueue: topo.CrawlQueue(),
					Exchange: topo.CrawlExchange(), RoutingKey: pipeline.KeyJob, MessageType: message.TypeCrawlJob, Summary: fp,
					Body: []byte(`{"fp":"` + fp + `"}`), Count: 1, DeadAt: time.Now(), Fingerprint: fp, Headers: json.RawMessage(`{}`)}); err != nil {
					t.Fatal(err)
				}
			}
			srv := &Server{Store: st, Log: testenv.Logger(t), RefreshInterval: 50 * time.Millisecond,
				DeadLetters: &deadletter.Service{Store: st, Publisher: sender}}
			l := DefaultHTTPLimits(time.Second)
			l.WriteTimeout = time.Microsecond
			ts := httptest.NewUnstartedServer(nil)
			ts.Config = NewHTTPServer("", srv.Handler(), l)
			ts.Start()
			t.Cleanup(func() { srv.Shutdown(); ts.Close() })

			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.ctype)
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatalf("POST %s: %v (the answer was lost to the write timeout)", tc.path, err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("POST %s = %d, want %d", tc.path, resp.StatusCode, tc.want)
			}
			if n := testenv.QueueDepth(t, raw, topo.CrawlQueue()); n != 2 {
				t.Errorf("%d messages back on the crawl queue, want 2", n)
			}
		})
	}
}
