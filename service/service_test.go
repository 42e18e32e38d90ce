package service

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type testConfig struct {
	Common
	Workers int           `env:"TRAWL_TEST_WORKERS" envDefault:"4"`
	Wait    time.Duration `env:"TRAWL_TEST_WAIT" envDefault:"1s"`
}

func (c testConfig) Validate() error { return c.Common.Validate() }

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		environ []string
		wantErr string // substring; "" = success
	}{
		{"defaults", nil, ""},
		{"override", []string{"TRAWL_TEST_WORKERS=9", "TRAWL_AMQP_PREFIX=x."}, ""},
		{"bad int names the variable", []string{"TRAWL_TEST_WORKERS=many"}, "TRAWL_TEST_WORKERS"},
		{"bad duration names the variable", []string{"TRAWL_TEST_WAIT=soon"}, "TRAWL_TEST_WAIT"},
		{"embedded field named", []string{"TRAWL_DELIVERY_LIMIT=x"}, "TRAWL_DELIVERY_LIMIT"},
		{"validation names the variable", []string{"TRAWL_LOG_FORMAT=xml"}, "TRAWL_LOG_FORMAT"},
		{"bad level", []string{"TRAWL_LOG_LEVEL=loud"}, "TRAWL_LOG_LEVEL"},
		{"zero limit", []string{"TRAWL_DELIVERY_LIMIT=0"}, "TRAWL_DELIVERY_LIMIT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var cfg testConfig
			err := LoadConfig(tt.environ, &cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("LoadConfig: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("LoadConfig error = %v, want one line naming %s", err, tt.wantErr)
			}
		})
	}
	var cfg testConfig
	if err := LoadConfig([]string{"TRAWL_TEST_WORKERS=9"}, &cfg); err != nil || cfg.Workers != 9 || cfg.AMQPPrefix != "trawl." || cfg.DeliveryLimit != 10 {
		t.Fatalf("cfg = %+v, %v", cfg, err)
	}
}

func TestHealthAndReady(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	srv := httptest.NewServer(HealthHandler(map[string]Check{
		"db": func(context.Context) error {
			if down.Load() {
				return errBrokerDown
			}
			return nil
		},
	}))
	defer srv.Close()
	get := func(path string) int {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if get("/healthz") != 200 || get("/readyz") != 200 {
		t.Fatal("healthy service not 200")
	}
	down.Store(true)
	if get("/healthz") != 200 || get("/readyz") != 503 {
		t.Fatal("readyz should be 503 when a check fails, healthz still 200")
	}
	addr := strings.TrimPrefix(srv.URL, "http://")
	if err := Healthcheck(t.Context(), addr); err != nil {
		t.Fatalf("Healthcheck: %v", err)
	}
	if err := Healthcheck(t.Context(), "127.0.0.1:1"); err == nil {
		t.Fatal("Healthcheck of a closed port succeeded")
	}
}

// TestWorkContextOutlivesItsParentByGrace: work goes on after ctx ends, for grace and no longer.
func TestWorkContextOutlivesItsParentByGrace(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	work, cancelWork := WorkContext(ctx, 200*time.Millisecond)
	defer cancelWork()
	cancel()
	time.Sleep(50 * time.Millisecond)
	if work.Err() != nil {
		t.Fatal("work ended with its parent, before its grace")
	}
	select {
	case <-work.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("work still live 5 s after a 200 ms grace")
	}
}
