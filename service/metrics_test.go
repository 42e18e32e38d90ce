package service

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trawlhq/trawl/metrics"
	"github.com/trawlhq/trawl/test/harness"
)

func TestMetricsAddrValidated(t *testing.T) {
	t.Parallel()
	for env, wantErr := range map[string]bool{
		"TRAWL_METRICS_ADDR=":               false,
		"TRAWL_METRICS_ADDR=:9100":          false,
		"TRAWL_METRICS_ADDR=127.0.0.1:9100": false,
		"TRAWL_METRICS_ADDR=9100":           true,
		"TRAWL_METRICS_ADDR=http://x:9100/": true,
	} {
		var cfg testConfig
		err := LoadConfig([]string{env}, &cfg)
		if (err != nil) != wantErr {
			t.Errorf("%s: err = %v, want error %v", env, err, wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "TRAWL_METRICS_ADDR") {
			t.Errorf("%s: error %q does not name the variable", env, err)
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// With no TRAWL_METRICS_ADDR, /metrics joins the health endpoints; with one, it does not.
func TestWithMetrics(t *testing.T) {
	t.Parallel()
	reg := metrics.New(metrics.Crawler, "v-test")
	health := HealthHandler(map[string]Check{})

	shared := httptest.NewServer(WithMetrics(health, reg, ""))
	defer shared.Close()
	if code, body := get(t, shared.URL+"/metrics"); code != 200 || !strings.Contains(body, `trawl_build_info{binary="crawler",version="v-test"} 1`) {
		t.Errorf("shared /metrics = %d %q", code, body)
	}
	if code, _ := get(t, shared.URL+"/healthz"); code != 200 {
		t.Errorf("shared /healthz = %d", code)
	}

	apart := httptest.NewServer(WithMetrics(health, reg, ":9100"))
	defer apart.Close()
	if code, _ := get(t, apart.URL+"/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics on the health server with TRAWL_METRICS_ADDR set = %d, want 404", code)
	}
}

func TestServeMetrics(t *testing.T) {
	t.Parallel()
	reg := metrics.New(metrics.Processor, "v-test")
	log := slog.New(slog.DiscardHandler)

	// An empty address starts nothing: metrics are served elsewhere.
	idle := NewLifecycle(t.Context(), time.Second, log)
	idle.ServeMetrics("", reg)
	if n := len(idle.comps); n != 0 {
		t.Errorf("ServeMetrics with no address started %d components", n)
	}
	_ = idle.Stop(nil)

	addr := harness.FreeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	lc := NewLifecycle(ctx, time.Second, log)
	lc.ServeMetrics(addr, reg)
	waitStatus(t, "http://"+addr+"/metrics", http.StatusOK)
	cancel()
	if err := lc.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if _, err := http.Get("http://" + addr + "/metrics"); err == nil {
		t.Error("the metrics server still answers after the lifecycle stopped")
	}
}
