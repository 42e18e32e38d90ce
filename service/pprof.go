package service

import (
	"net/http"
	"net/http/pprof"
)

// WithPprof adds the net/http/pprof endpoints under /debug/pprof/ to h when on is true (see
// Common.PProf); otherwise it returns h unchanged, and /debug/pprof/ is whatever h makes of it
// (404 on the health server). `make profile` turns it on to fetch CPU and heap profiles.
func WithPprof(h http.Handler, on bool) http.Handler {
	if !on {
		return h
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}
