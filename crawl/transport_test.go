package crawl

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/robots"
	"github.com/trawlhq/trawl/test/testsite"
)

// TestEveryKindTakesTheOnePath fetches a page, a robots.txt and a sitemap as the worker does
// (fetchJob) from one server, and checks that the three get the same guarantees
// (docs/adr/0052-one-fetch-path.md): the SSRF guard refuses a private address, directly and
// after a redirect; the user agent is sent; gzip is asked for and decoded within the kind's
// body limit; the total fetch time cuts a trickling body, keeping what arrived; and the fetch
// is timed from when its request was written. A robots.txt or sitemap fetch that went around
// the shared client (a client of its own, colly's defaults, the default transport) fails here.
func TestEveryKindTakesTheOnePath(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	var xml strings.Builder
	xml.WriteString("<urlset>")
	for i := 0; xml.Len() < 2*robots.MaxBytes; i++ {
		fmt.Fprintf(&xml, "<url><loc>http://a.test/%d</loc></url>\n", i)
	}
	xml.WriteString("</urlset>")
	big := testsite.Gzip([]byte(xml.String()))
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Header().Set("Content-Type", "application/xml")
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(big)
		case "/away":
			_, port, _ := net.SplitHostPort(r.Host)
			http.Redirect(w, r, "http://127.0.0.2:"+port+"/big", http.StatusFound)
		case "/stall":
			w.Header().Set("Content-Type", "application/xml")
			_, _ = w.Write([]byte("<urlset><url><loc>http://a.test/1</loc></url>"))
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}
	})
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	f := testFetcher(t, FetchConfig{MaxBodyBytes: limit, Timeout: time.Second,
		Guard: Guard{Ports: []int{p}, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}})

	kinds := []struct {
		kind string
		// size is what Size says of the big body: the kind's body limit, plus the byte that
		// tells it was cut where the kind keeps it.
		size int
		// follows: the kind follows redirects (and so is refused at the private hop) rather
		// than recording the 302.
		follows bool
	}{
		{message.KindPage, limit, false},
		{message.KindRobots, robots.MaxBytes + 1, true},
		{message.KindSitemap, limit + 1, true},
	}
	for _, k := range kinds {
		t.Run(k.kind, func(t *testing.T) {
			t.Parallel()
			fetch := func(u string) (message.FetchResult, time.Time) {
				job := testJob(u)
				job.Kind = k.kind
				return f.fetchJob(t.Context(), job, "w")
			}

			res, sent := fetch(srv.URL + "/big?" + k.kind)
			if res.Status != 200 || res.Error != "" || res.Size != k.size {
				t.Errorf("big: status %d error %q size %d, want 200 and %d", res.Status, res.Error, res.Size, k.size)
			}
			if k.kind != message.KindRobots && !res.Truncated {
				t.Error("big: not flagged truncated")
			}
			if sent.IsZero() || !res.StartedAt.Equal(sent) {
				t.Errorf("big: started %v, written %v: want the fetch timed from the write", res.StartedAt, sent)
			}
			srv.mu.Lock()
			requests := srv.requests
			srv.mu.Unlock()
			for _, req := range requests {
				if req.URL.RawQuery != k.kind {
					continue
				}
				if ua, ae := req.Header.Get("User-Agent"), req.Header.Get("Accept-Encoding"); ua != testUA || ae != "gzip" {
					t.Errorf("big: User-Agent %q Accept-Encoding %q, want %q and gzip", ua, ae, testUA)
				}
				if v := req.Header.Get(sentHeader); v != "" {
					t.Errorf("big: the server saw %s: %q", sentHeader, v)
				}
			}

			res, _ = fetch("http://127.0.0.2:" + port + "/big")
			if res.Status != 0 || res.ErrorClass != "blocked" || !strings.Contains(res.Error, "127.0.0.2 is in 127.0.0.0/8") {
				t.Errorf("private address: status %d class %q error %q, want 127.0.0.2 blocked", res.Status, res.ErrorClass, res.Error)
			}

			res, _ = fetch(srv.URL + "/away")
			switch {
			case k.follows && (res.Status != 0 || res.ErrorClass != "blocked" || !strings.Contains(res.Error, "127.0.0.2 is in 127.0.0.0/8")):
				t.Errorf("redirect to a private address: status %d class %q error %q, want 127.0.0.2 blocked", res.Status, res.ErrorClass, res.Error)
			case !k.follows && (res.Status != http.StatusFound || len(res.Links) != 1):
				t.Errorf("redirect: status %d links %q error %q, want the 302 recorded", res.Status, res.Links, res.Error)
			}

			start := time.Now()
			res, _ = fetch(srv.URL + "/stall")
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("stalled body: the fetch took %s, want it cut at the 1s total", took)
			}
			if res.Status != 200 || res.Error != "" || res.Size == 0 {
				t.Errorf("stalled body: status %d error %q size %d, want 200 and what arrived", res.Status, res.Error, res.Size)
			}
			if k.kind != message.KindRobots && !res.Truncated {
				t.Error("stalled body: not flagged truncated")
			}
		})
	}
}
