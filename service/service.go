// Package service is the process plumbing the three Trawl binaries share: configuration from
// the environment, logging, health endpoints, the healthcheck subcommand, and the lifecycle that
// starts and stops each binary's components in a written order (Lifecycle).
package service

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"reflect"
	"runtime"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Common is the configuration every binary shares.
type Common struct {
	AMQPURL         string        `env:"TRAWL_AMQP_URL" envDefault:"amqp://guest:guest@127.0.0.1:5672/"`
	AMQPPrefix      string        `env:"TRAWL_AMQP_PREFIX" envDefault:"trawl."`
	DeliveryLimit   int           `env:"TRAWL_DELIVERY_LIMIT" envDefault:"10"`
	LogLevel        string        `env:"TRAWL_LOG_LEVEL" envDefault:"info"`
	LogFormat       string        `env:"TRAWL_LOG_FORMAT" envDefault:"json"`
	ShutdownTimeout time.Duration `env:"TRAWL_SHUTDOWN_TIMEOUT" envDefault:"30s"`

	// MetricsAddr is where /metrics is served. Empty means on the health server's address (the
	// dashboard's own address for the dashboard).
	MetricsAddr string `env:"TRAWL_METRICS_ADDR"`

	// AMQPManagementURL is the RabbitMQ management API (queue statistics), with credentials:
	// http://user:pass@host:15672. Empty means derived from the first TRAWL_AMQP_URL.
	AMQPManagementURL string `env:"TRAWL_AMQP_MANAGEMENT_URL"`

	// PProf mounts net/http/pprof under /debug/pprof/ on the health server (crawler and
	// processor). Off by default: profiles expose internals, so keep that port internal.
	PProf bool `env:"TRAWL_PPROF" envDefault:"false"`
}

// Validate checks the shared fields.
func (c Common) Validate() error {
	if strings.TrimSpace(c.AMQPURL) == "" {
		return errors.New("TRAWL_AMQP_URL: must not be empty")
	}
	if c.DeliveryLimit < 1 {
		return fmt.Errorf("TRAWL_DELIVERY_LIMIT: must be at least 1, got %d", c.DeliveryLimit)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return fmt.Errorf("TRAWL_LOG_LEVEL: %w", err)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return fmt.Errorf("TRAWL_LOG_FORMAT: must be json or text, got %q", c.LogFormat)
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return fmt.Errorf("TRAWL_METRICS_ADDR: must be host:port or :port, got %q", c.MetricsAddr)
		}
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("TRAWL_SHUTDOWN_TIMEOUT: must be positive, got %s", c.ShutdownTimeout)
	}
	return nil
}

// Validator is a configuration that checks itself.
type Validator interface{ Validate() error }

// LoadConfig fills cfg (a pointer to a struct with env tags) from environ ("KEY=value" pairs)
// and validates it. Errors are one line that names the variable.
func LoadConfig(environ []string, cfg Validator) error {
	if err := env.ParseWithOptions(cfg, env.Options{Environment: envMap(environ)}); err != nil {
		return fmt.Errorf("configuration: %s", describeEnvError(err, cfg))
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	return nil
}

// envMap turns "KEY=value" pairs into a map.
func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func describeEnvError(err error, cfg any) string {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err.Error()
	}
	var parts []string
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			parts = append(parts, fmt.Sprintf("%s: cannot parse as %s: %v", envKey(reflect.TypeOf(cfg), pe.Name), pe.Type, pe.Err))
			continue
		}
		parts = append(parts, e.Error())
	}
	return strings.Join(parts, "; ")
}

// envKey finds the env tag of the field called name, looking into embedded structs.
func envKey(t reflect.Type, name string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return name
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Name == name {
			if k, _, _ := strings.Cut(f.Tag.Get("env"), ","); k != "" {
				return k
			}
		}
		if f.Anonymous {
			if k := envKey(f.Type, name); k != name {
				return k
			}
		}
	}
	return name
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("must be debug, info, warn or error, got %q", s)
	}
	return l, nil
}

// NewLogger builds the process logger: JSON by default, text when format is "text".
func NewLogger(w io.Writer, level, format, binary string) *slog.Logger {
	l, err := parseLevel(level)
	if err != nil {
		l = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if format == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h).With("bin", binary, "version", Version)
}

// WorkerID returns an identifier unique to this process: the host name and a random suffix.
func WorkerID(kind string) string {
	host, _ := os.Hostname()
	if host == "" {
		host = "unknown"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%s-%x", kind, host, b)
}

// Check is one readiness check.
type Check func(ctx context.Context) error

// HealthHandler serves /healthz (the process is alive; the body also carries the goroutine
// count, which the soak benchmark samples for drift) and /readyz (every check passes).
func HealthHandler(checks map[string]Check) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"status":"ok","goroutines":%d}`+"\n", runtime.NumGoroutine())
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		status, body := ReadyStatus(ctx, checks)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	})
	return mux
}

// ReadyStatus runs the checks and returns the HTTP status and a JSON body naming each result.
func ReadyStatus(ctx context.Context, checks map[string]Check) (int, []byte) {
	status := http.StatusOK
	var parts []string
	for name, check := range checks {
		res := "ok"
		if err := check(ctx); err != nil {
			res = err.Error()
			status = http.StatusServiceUnavailable
		}
		parts = append(parts, fmt.Sprintf("%q:%q", name, res))
	}
	return status, []byte("{" + strings.Join(parts, ",") + "}\n")
}

// Serve runs srv until ctx ends, then shuts it down gracefully within timeout.
func Serve(ctx context.Context, srv *http.Server, timeout time.Duration) error {
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return fmt.Errorf("service: listen %s: %w", srv.Addr, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("service: serve %s: %w", srv.Addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("service: shutdown %s: %w", srv.Addr, err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("service: serve %s: %w", srv.Addr, err)
	}
	return nil
}

// Healthcheck asks the process listening on addr (":8081", "0.0.0.0:8081", …) for /healthz and
// returns nil on 200. It is the binaries' `healthcheck` subcommand, for images without curl.
func Healthcheck(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("healthcheck: address %q: %w", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: status %d", resp.StatusCode)
	}
	return nil
}

// WorkContext returns a context for work already under way when ctx ends: it ends grace after
// ctx does (or when cancel is called), so a SIGTERM lets in-flight fetches, batches and scheduler
// rounds finish within TRAWL_SHUTDOWN_TIMEOUT instead of cutting them off mid-way.
func WorkContext(ctx context.Context, grace time.Duration) (work context.Context, cancel context.CancelFunc) {
	work, cancel = context.WithCancel(context.WithoutCancel(ctx))
	context.AfterFunc(ctx, func() { time.AfterFunc(grace, cancel) })
	return work, cancel
}
