package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/trawlhq/trawl/metrics"
	"github.com/trawlhq/trawl/service"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/web"
)

// Config is the dashboard's configuration.
type Config struct {
	service.Common
	DatabaseURL string `env:"TRAWL_DATABASE_URL" envDefault:"postgres://postgres@127.0.0.1:5432/trawl?sslmode=disable"`
	Addr        string `env:"TRAWL_DASHBOARD_ADDR" envDefault:":8080"`
	Password    string `env:"TRAWL_DASHBOARD_PASSWORD"`
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if c.DatabaseURL == "" {
		return errors.New("TRAWL_DATABASE_URL: must not be empty")
	}
	if c.Addr == "" {
		return errors.New("TRAWL_DASHBOARD_ADDR: must not be empty")
	}
	return nil
}

func run(ctx context.Context, args, environ []string, stdout io.Writer) error {
	var cfg Config
	if err := service.LoadConfig(environ, &cfg); err != nil {
		return err
	}
	cmd := ""
	if len(args) > 1 {
		cmd = args[1]
	}
	if cmd == "healthcheck" {
		return service.Healthcheck(ctx, cfg.Addr)
	}
	log := service.NewLogger(stdout, cfg.LogLevel, cfg.LogFormat, "dashboard")
	db, err := store.Open(ctx, cfg.DatabaseURL, 10, log)
	if err != nil {
		return err
	}
	defer db.Close()
	switch cmd {
	case "migrate":
		v, err := db.Migrate(ctx)
		if err != nil {
			return err
		}
		log.Info("database schema is up to date", "version", v)
		return nil
	case "", "serve":
	default:
		return fmt.Errorf("unknown command %q (want serve, migrate or healthcheck)", cmd)
	}
	if err := db.CheckSchema(ctx); err != nil {
		return err
	}
	if cfg.Password == "" {
		log.Warn("TRAWL_DASHBOARD_PASSWORD is not set: the dashboard is open to anyone who can reach it")
	}
	srv := &web.Server{Store: db, Log: log, Checks: map[string]service.Check{"database": db.Ping}}
	reg := metrics.New(metrics.Dashboard, service.Version)
	handler := service.WithMetrics(metrics.Instrument(srv.Handler()), reg, cfg.MetricsAddr)
	httpSrv := &http.Server{Addr: cfg.Addr, Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	log.Info("dashboard listening", "addr", cfg.Addr)
	mctx, stopMetrics := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopMetrics() // runs before wg.Wait, also when the dashboard server fails to start
	wg.Go(func() { service.ServeMetrics(mctx, cfg.MetricsAddr, reg, log) })
	return service.Serve(ctx, httpSrv, cfg.ShutdownTimeout)
}
