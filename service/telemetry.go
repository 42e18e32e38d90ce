package service

import (
	"context"
	"net/http"
	"time"

	"github.com/trawlhq/trawl/metrics"
)

// ServeHealth starts a worker's health server on addr as a StageTelemetry component: /healthz,
// /readyz (every check passes, and shutdown has not begun: Ready), /metrics unless
// c.MetricsAddr gives them their own server (ServeMetrics), and /debug/pprof/ when c.PProf. A
// server that cannot listen is logged ("health server") and the worker goes on without it.
func (l *Lifecycle) ServeHealth(c Common, addr string, checks map[string]Check, reg *metrics.Registry) {
	l.ServeMetrics(c.MetricsAddr, reg)
	health := WithPprof(WithMetrics(HealthHandler(l.Ready(checks)), reg, c.MetricsAddr), c.PProf)
	l.Go("health server", StageTelemetry, func(ctx context.Context) error {
		srv := &http.Server{Addr: addr, Handler: health, ReadHeaderTimeout: 5 * time.Second}
		if err := Serve(ctx, srv, 5*time.Second); err != nil {
			l.log.Error("health server", "err", err)
		}
		return nil
	})
}

// ServeMetrics starts the metrics server on addr as a StageTelemetry component, when addr is set
// (WithMetrics serves /metrics on another server otherwise). A server that cannot listen is
// logged ("metrics server") and the process goes on without it.
func (l *Lifecycle) ServeMetrics(addr string, reg *metrics.Registry) {
	if addr == "" {
		return
	}
	l.Go("metrics server", StageTelemetry, func(ctx context.Context) error {
		serveMetrics(ctx, addr, reg, l.log)
		return nil
	})
}
