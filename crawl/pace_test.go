package crawl

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/test/testenv"
	"github.com/trawlhq/trawl/test/testsite"
)

// pacedServer records when each request arrives and how many run at once; pages whose path
// ends in "slow" take slow to serve.
type pacedServer struct {
	*httptest.Server
	mu       sync.Mutex
	arrivals []time.Time
	running  int
	overlap  int // the most requests running at once
}

func newPacedServer(t *testing.T, slow time.Duration) *pacedServer {
	t.Helper()
	s := &pacedServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.arrivals = append(s.arrivals, testsite.Arrival(r)) // when it reached the machine
		s.running++
		s.overlap = max(s.overlap, s.running)
		s.mu.Unlock()
		if len(r.URL.Path) >= 4 && r.URL.Path[len(r.URL.Path)-4:] == "slow" {
			time.Sleep(slow)
		}
		_, _ = w.Write([]byte("ok"))
		s.mu.Lock()
		s.running--
		s.mu.Unlock()
	}))
	testsite.StampArrivals(s.Server)
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// TestWorkerPacesAHostsSlots sends one message of a paced host's slots to a worker with fetch
// slots to spare: it starts them one after another, none before its delay after receipt, each
// at least the interval after the previous start, and a page slower than the interval delays
// the next instead of overlapping it.
func TestWorkerPacesAHostsSlots(t *testing.T) {
	t.Parallel()
	const interval = 100 * time.Millisecond
	srv := newPacedServer(t, 250*time.Millisecond)
	fx := newBrokerFixture(t, func(_ *testing.T, fx *brokerFixture) { fx.worker.Concurrency = 8 })
	var jobs []message.CrawlJob
	for i, p := range []string{"/a", "/b-slow", "/c", "/d", "/e-slow", "/f"} {
		j := testJob(srv.URL + p)
		j.IntervalMS, j.DelayMS = int(interval/time.Millisecond), 300+int64(i)*100
		jobs = append(jobs, j)
	}
	sent := time.Now()
	fx.publishJobs(t, jobs...)
	fx.drainResults(t, len(jobs))
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "six jobs done", func() bool {
		return fx.worker.Processed() == 6
	})
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.arrivals) != 6 {
		t.Fatalf("server saw %d requests, want 6", len(srv.arrivals))
	}
	if first := srv.arrivals[0].Sub(sent); first < 300*time.Millisecond {
		t.Errorf("first request %v after the publish, want at least its 300ms delay", first)
	}
	for i := 1; i < len(srv.arrivals); i++ {
		if d := srv.arrivals[i].Sub(srv.arrivals[i-1]); d < interval {
			t.Errorf("requests %d and %d %v apart, want at least %v", i-1, i, d, interval)
		}
	}
	if srv.overlap != 1 {
		t.Errorf("%d requests ran at once, want 1", srv.overlap)
	}
	t.Logf("arrivals after publish: %v", func() (out []string) {
		for _, a := range srv.arrivals {
			out = append(out, fmt.Sprint(a.Sub(sent).Round(time.Millisecond)))
		}
		return out
	}())
}

// fetch reports when the request was written, which pacing counts from, and the header that
// asks for it never reaches the server.
func TestFetchReportsWhenTheRequestWasSent(t *testing.T) {
	t.Parallel()
	var got http.Header
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		_, _ = w.Write([]byte("ok"))
	})
	f := testFetcher(t, FetchConfig{})
	before := time.Now()
	res, sent := f.fetch(testJob(srv.URL+"/"), "w")
	after := time.Now()
	if res.Status != http.StatusOK {
		t.Fatalf("status %d (%s)", res.Status, res.Error)
	}
	if sent.Before(before) || sent.After(after) {
		t.Errorf("sent %v, want between %v and %v", sent, before, after)
	}
	if v := got.Get(sentHeader); v != "" {
		t.Errorf("server got %s: %q, want no such header", sentHeader, v)
	}
	if n := func() (n int) { f.sent.Range(func(any, any) bool { n++; return true }); return }(); n != 0 {
		t.Errorf("%d sent times left behind, want 0", n)
	}
}

// A paced message that comes back unsettled (its crawler died holding it) is not split: its
// jobs stay together, one after another, and the first waits one interval, since the crawler
// that died may have just fetched.
func TestWorkerKeepsARedeliveredPacedMessageTogether(t *testing.T) {
	t.Parallel()
	const interval = 300 * time.Millisecond
	srv := newPacedServer(t, 0)
	var jobs []message.CrawlJob
	for i, p := range []string{"/x", "/y", "/z"} {
		j := testJob(srv.URL + p)
		j.IntervalMS, j.DelayMS = int(interval/time.Millisecond), int64(i)*int64(interval/time.Millisecond)
		jobs = append(jobs, j)
	}
	var returned time.Time
	fx := newBrokerFixture(t, func(t *testing.T, fx *brokerFixture) {
		fx.worker.Concurrency = 4
		fx.publishJobs(t, jobs...)
		d := testenv.Get(t, fx.raw, fx.topo.CrawlQueue(), false)
		returned = time.Now()
		if err := d.Nack(false, true); err != nil {
			t.Fatal(err)
		}
	})
	fx.drainResults(t, len(jobs))
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "three jobs done", func() bool {
		return fx.worker.Processed() == 3
	})
	if s := fx.worker.Splits(); s != 0 {
		t.Errorf("Splits = %d, want 0: a paced message stays whole", s)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.arrivals) != 3 {
		t.Fatalf("server saw %d requests, want 3", len(srv.arrivals))
	}
	if first := srv.arrivals[0].Sub(returned); first < interval {
		t.Errorf("first request %v after the message came back, want at least one interval (%v)", first, interval)
	}
	for i := 1; i < len(srv.arrivals); i++ {
		if d := srv.arrivals[i].Sub(srv.arrivals[i-1]); d < interval {
			t.Errorf("requests %d and %d %v apart, want at least %v", i-1, i, d, interval)
		}
	}
}
