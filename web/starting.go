package web

import (
	"io/fs"
	"net/http"
	"strings"
	"sync/atomic"
)

// Swap is an http.Handler whose handler can be replaced while serving: the dashboard answers
// with a start-up page while the database is still unreachable, then switches to the app.
type Swap struct{ h atomic.Pointer[http.Handler] }

// Set replaces the handler.
func (s *Swap) Set(h http.Handler) { s.h.Store(&h) }

// ServeHTTP serves with the current handler.
func (s *Swap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := s.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, "starting", http.StatusServiceUnavailable)
}

// StartingHandler answers while the dashboard waits for its database: /healthz, /readyz and
// the API are 503 with a JSON body (healthz turns 200 once the app serves, so health checks and
// tests that wait for it see a dashboard that works), and pages are a 503 that says the
// database is unreachable and reloads itself every few seconds.
func StartingHandler() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	static := http.StripPrefix("/static/", staticHandler(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		switch {
		case strings.HasPrefix(r.URL.Path, "/static/"):
			static.ServeHTTP(w, r)
		case r.URL.Path == "/healthz" || r.URL.Path == "/readyz":
			h.Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"starting","database":"unreachable"}` + "\n"))
		case isAPI(r.URL.Path):
			h.Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"database unavailable"}` + "\n"))
		default:
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Retry-After", "3")
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = startingPage().Render(r.Context(), w)
		}
	})
}
