package service

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/trawlhq/trawl/metrics"
)

// WithMetrics adds GET /metrics, serving reg, to h when metricsAddr is empty (metrics share the
// health or dashboard server); otherwise it returns h unchanged and Lifecycle.ServeMetrics serves them.
func WithMetrics(h http.Handler, reg *metrics.Registry, metricsAddr string) http.Handler {
	if metricsAddr != "" {
		return h
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", reg.Handler())
	mux.Handle("/", h)
	return mux
}

// serveMetrics serves /metrics on addr until ctx ends.
func serveMetrics(ctx context.Context, addr string, reg *metrics.Registry, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", reg.Handler())
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if err := Serve(ctx, srv, 5*time.Second); err != nil {
		log.Error("metrics server", "err", err)
	}
}
