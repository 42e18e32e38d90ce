package service

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPprofOptIn: the profiling endpoints exist only when TRAWL_PPROF is on, and the health
// endpoints answer either way.
func TestPprofOptIn(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		on   bool
		want int
	}{{"off", false, http.StatusNotFound}, {"on", true, http.StatusOK}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var c Common
			if err := LoadConfig([]string{"TRAWL_PPROF=" + map[bool]string{true: "true", false: "false"}[tc.on]}, &c); err != nil {
				t.Fatal(err)
			}
			if c.PProf != tc.on {
				t.Fatalf("PProf = %v, want %v", c.PProf, tc.on)
			}
			srv := httptest.NewServer(WithPprof(HealthHandler(nil), c.PProf))
			defer srv.Close()
			for path, want := range map[string]int{
				"/debug/pprof/":             tc.want,
				"/debug/pprof/heap?debug=1": tc.want,
				"/healthz":                  http.StatusOK,
			} {
				resp, err := http.Get(srv.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
				}
				if tc.on && path == "/debug/pprof/" && !strings.Contains(string(body), "goroutine") {
					t.Errorf("GET %s: no profile index in %q", path, body)
				}
			}
		})
	}
}

// TestPprofOffByDefault: an empty environment leaves profiling off.
func TestPprofOffByDefault(t *testing.T) {
	t.Parallel()
	var c Common
	if err := LoadConfig(nil, &c); err != nil {
		t.Fatal(err)
	}
	if c.PProf {
		t.Fatal("TRAWL_PPROF is on by default")
	}
}
