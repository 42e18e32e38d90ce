package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/test/testsite"
)

// serveOn starts an httptest server for h listening on addr (a loopback address), closed when
// the test ends.
func serveOn(t *testing.T, addr string, h http.Handler) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// TestSSRFGuardAllowsOnlyTheSite runs the binaries with the SSRF guard on, as in production,
// and only the test site's address allowed (TRAWL_ALLOWED_NETWORKS=127.0.0.2/32), instead of
// the harness's usual TRAWL_ALLOW_PRIVATE_NETWORKS. The site on 127.0.0.2 is crawled in full;
// a host on 127.0.0.2 whose robots.txt redirects to 127.0.0.3, and a target seeded on
// 127.0.0.3, are refused by the guard: nothing reaches 127.0.0.3, and their URLs fail.
func TestSSRFGuardAllowsOnlyTheSite(t *testing.T) {
	t.Parallel()
	var forbiddenHits atomic.Int64
	forbidden := serveOn(t, "127.0.0.3:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		forbiddenHits.Add(1)
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<title>internal</title>secret")
	}))
	site := testsite.New(testsite.Options{Pages: 40, Traps: true, Addr: "127.0.0.2:0"})
	defer site.Close()
	redirector := serveOn(t, "127.0.0.2:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			http.Redirect(w, r, forbidden.URL+"/robots.txt", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<title>redirector</title><a href="%s/">internal</a>`, forbidden.URL)
	}))

	// Every port is allowed, so that what refuses 127.0.0.3 is its address.
	ports := []string{mustPort(t, site.URL()), mustPort(t, redirector.URL), mustPort(t, forbidden.URL)}
	sys := NewSystem(t, "TRAWL_ALLOW_PRIVATE_NETWORKS=false", "TRAWL_ALLOWED_NETWORKS=127.0.0.2/32",
		"TRAWL_ALLOWED_PORTS="+strings.Join(ports, ","))
	sys.StartAll(1, 1)
	siteID := createTarget(t, sys, map[string]any{"seed_url": site.SeedURL(), "max_depth": 100, "per_host_rps": 0})
	redirID := createTarget(t, sys, map[string]any{"seed_url": redirector.URL + "/", "per_host_rps": 0})
	forbiddenID := createTarget(t, sys, map[string]any{"seed_url": forbidden.URL + "/", "per_host_rps": 0})

	if st := sys.WaitDone(siteID, 3*time.Minute); st.Failed != 0 {
		t.Errorf("site on the allowed address: %d URLs failed, want 0", st.Failed)
	}
	stored := query[string](t, sys.DSN, `SELECT url FROM pages WHERE target_id = $1 ORDER BY url`, siteID)
	if diff := cmp.Diff(site.ExpectedURLs(), stored); diff != "" {
		t.Errorf("stored pages of the allowed site (-want +got):\n%s", diff)
	}
	for _, id := range []int64{redirID, forbiddenID} {
		if st := sys.WaitDone(id, 2*time.Minute); st.Fetched != 0 || st.Failed != 1 {
			t.Errorf("target %d: %d fetched and %d failed, want its seed failed and nothing fetched", id, st.Fetched, st.Failed)
		}
	}
	// The robots.txt of both hosts could not be fetched: the guard refused 127.0.0.3, reached
	// by a redirect from the first and directly for the second.
	for _, host := range []string{strings.TrimPrefix(redirector.URL, "http://"), strings.TrimPrefix(forbidden.URL, "http://")} {
		errs := query[string](t, sys.DSN, `SELECT coalesce(robots_error, '') FROM hosts WHERE host = $1`, host)
		if len(errs) != 1 || !strings.Contains(errs[0], "address blocked") || !strings.Contains(errs[0], "127.0.0.3") {
			t.Errorf("robots.txt error of %s = %q, want the guard refusing 127.0.0.3", host, errs)
		}
	}
	if n := forbiddenHits.Load(); n != 0 {
		t.Errorf("127.0.0.3 received %d requests, want none", n)
	}
}

func mustPort(t *testing.T, rawURL string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(strings.TrimPrefix(rawURL, "http://"))
	if err != nil {
		t.Fatalf("%s: %v", rawURL, err)
	}
	return port
}
