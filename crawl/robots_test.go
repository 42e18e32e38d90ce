package crawl

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/trawlhq/trawl/robots"
)

func TestFetchRobots(t *testing.T) {
	t.Parallel()
	big := "User-agent: *\nDisallow: /early\n" + strings.Repeat("# padding padding padding\n", robots.MaxBytes/26+10) + "Disallow: /late\n"
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/ok/robots.txt":
			_, _ = w.Write([]byte("User-agent: *\nDisallow: /private\n"))
		case strings.HasPrefix(r.URL.Path, "/hop/"):
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/hop/"))
			if n == 0 {
				_, _ = w.Write([]byte("User-agent: *\nDisallow: /after-hops\n"))
				return
			}
			http.Redirect(w, r, "/hop/"+strconv.Itoa(n-1), http.StatusMovedPermanently)
		case r.URL.Path == "/missing/robots.txt":
			http.NotFound(w, r)
		case r.URL.Path == "/down/robots.txt":
			w.WriteHeader(http.StatusServiceUnavailable)
		case r.URL.Path == "/big/robots.txt":
			_, _ = w.Write([]byte(big))
		}
	})
	f := testFetcher(t, FetchConfig{MaxBodyBytes: 4096}) // the page limit does not apply
	tests := []struct {
		path      string
		status    int
		redirects int
		allowed   map[string]bool
	}{
		{"/ok/robots.txt", 200, 0, map[string]bool{"/private": false, "/public": true}},
		{"/hop/5", 200, 5, map[string]bool{"/after-hops": false, "/x": true}},
		{"/hop/6", 301, 5, map[string]bool{"/after-hops": true}}, // too many: unavailable
		{"/missing/robots.txt", 404, 0, map[string]bool{"/anything": true}},
		{"/down/robots.txt", 503, 0, map[string]bool{"/anything": false, "/robots.txt": true}},
		{"/big/robots.txt", 200, 0, map[string]bool{"/early": false, "/late": true}},
	}
	for _, tc := range tests {
		res := f.FetchRobots(t.Context(), srv.URL+tc.path)
		if res.Status != tc.status || res.Redirects != tc.redirects || res.Error != "" {
			t.Errorf("%s: status %d redirects %d error %q, want %d and %d", tc.path, res.Status, res.Redirects, res.Error, tc.status, tc.redirects)
		}
		r := res.Robots()
		for p, want := range tc.allowed {
			if got := r.Allowed(testUA, p); got != want {
				t.Errorf("%s: Allowed(%q) = %t, want %t", tc.path, p, got, want)
			}
		}
	}
	if res := f.FetchRobots(t.Context(), srv.URL+"/big/robots.txt"); len(res.Body) != robots.MaxBytes+1 || !res.Robots().Truncated() {
		t.Errorf("big robots.txt: kept %d bytes, truncated %t; want %d, true", len(res.Body), res.Robots().Truncated(), robots.MaxBytes+1)
	}
	if ua := srv.last().Header.Get("User-Agent"); ua != testUA {
		t.Errorf("User-Agent %q", ua)
	}
}

// TestFetchRobotsGuarded: robots.txt redirects are followed, but every hop is dialled through
// the guard, so a redirect into a private network fails (and the rules disallow everything).
func TestFetchRobotsGuarded(t *testing.T) {
	t.Parallel()
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/robots.txt", http.StatusFound)
	})
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	f := testFetcher(t, FetchConfig{Guard: Guard{Ports: []int{80, p}, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}})
	res := f.FetchRobots(t.Context(), srv.URL+"/robots.txt")
	if res.Status != 0 || res.ErrorClass != "blocked" || res.Robots().Allowed(testUA, "/x") {
		t.Errorf("status %d class %q error %q, want blocked and disallow-all", res.Status, res.ErrorClass, res.Error)
	}

	refused := f.FetchRobots(t.Context(), "http://127.0.0.1:1/robots.txt")
	if refused.Status != 0 || refused.Error == "" || refused.Robots().Allowed(testUA, "/x") {
		t.Errorf("unreachable: status %d error %q, want disallow-all", refused.Status, refused.Error)
	}
}
