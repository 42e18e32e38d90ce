package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/trawlhq/trawl/deadletter"
	"github.com/trawlhq/trawl/metrics"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/recrawl"
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
	// SecureCookies marks the session and CSRF cookies Secure; set it when the dashboard is
	// served over HTTPS (behind a TLS-terminating proxy).
	SecureCookies bool `env:"TRAWL_DASHBOARD_SECURE_COOKIES" envDefault:"false"`
	// AllowedHosts are host names, besides loopback names, that requests may be addressed to.
	// Without a password nothing else is served (against DNS rebinding); with one, when set, it
	// restricts the host names too.
	AllowedHosts []string `env:"TRAWL_DASHBOARD_ALLOWED_HOSTS"`
	// TrustedProxies are addresses or CIDR ranges of reverse proxies whose X-Forwarded-For
	// header names the client (for login throttling and logs). Unset, it is ignored.
	TrustedProxies []string `env:"TRAWL_DASHBOARD_TRUSTED_PROXIES"`
	// RefreshInterval is how often the live views are pushed to browsers.
	RefreshInterval time.Duration `env:"TRAWL_DASHBOARD_REFRESH" envDefault:"2s"`
	// RecrawlTimeout bounds one re-crawl RPC.
	RecrawlTimeout time.Duration `env:"TRAWL_RECRAWL_TIMEOUT" envDefault:"15s"`
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
	if c.RefreshInterval < 100*time.Millisecond {
		return fmt.Errorf("TRAWL_DASHBOARD_REFRESH: must be at least 100ms, got %s", c.RefreshInterval)
	}
	for _, h := range c.AllowedHosts {
		if h = strings.TrimSpace(h); h == "" || strings.ContainsAny(h, "/ \t@?#") {
			return fmt.Errorf("TRAWL_DASHBOARD_ALLOWED_HOSTS: %q is not a host name (give names like dash.example.com, comma-separated)", h)
		}
	}
	if _, err := parseProxies(c.TrustedProxies); err != nil {
		return err
	}
	if c.RecrawlTimeout < time.Second {
		return fmt.Errorf("TRAWL_RECRAWL_TIMEOUT: must be at least 1s, got %s", c.RecrawlTimeout)
	}
	return nil
}

// cli is the dashboard's command line.
var cli = service.CLI{
	Binary: "dashboard",
	Summary: "Trawl's web UI and JSON API. Without a command (or with serve) it serves on TRAWL_DASHBOARD_ADDR\n" +
		"until SIGINT or SIGTERM.",
	Commands: []service.Command{
		{Name: "serve", Summary: "Serve the dashboard (the default)."},
		{Name: "migrate", Summary: "Apply the database migrations, then exit."},
		{Name: "api-token", Summary: "Print the API token derived from TRAWL_DASHBOARD_PASSWORD."},
		{Name: "healthcheck", Summary: "Ask the running dashboard's /healthz on TRAWL_DASHBOARD_ADDR; exit 0 when healthy."},
	},
}

// parseProxies reads TRAWL_DASHBOARD_TRUSTED_PROXIES: addresses (one host) or CIDR ranges.
func parseProxies(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range ss {
		v = strings.TrimSpace(v)
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, fmt.Errorf("TRAWL_DASHBOARD_TRUSTED_PROXIES: %q is not an IP address or CIDR range", v)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p)
	}
	return out, nil
}

func run(ctx context.Context, args, environ []string, stdout io.Writer) error {
	cmd, done, err := cli.Parse(args, stdout)
	if done || err != nil {
		return err
	}
	var cfg Config
	if err := service.LoadConfig(environ, &cfg); err != nil {
		return err
	}
	switch cmd {
	case "healthcheck":
		return service.Healthcheck(ctx, cfg.Addr)
	case "api-token":
		if cfg.Password == "" {
			return errors.New("TRAWL_DASHBOARD_PASSWORD is not set: the API needs no token")
		}
		_, err := fmt.Fprintln(stdout, web.NewAuth(cfg.Password).APIToken())
		return err
	}
	log := service.NewLogger(stdout, cfg.LogLevel, cfg.LogFormat, "dashboard")
	switch cmd {
	case "migrate":
		db, err := store.Open(ctx, cfg.DatabaseURL, 2, log)
		if err != nil {
			return err
		}
		defer db.Close()
		v, err := db.Migrate(ctx)
		if err != nil {
			return err
		}
		log.Info("database schema is up to date", "schema_version", v)
		return nil
	}

	// Listen at once: until the database answers, pages say it is unreachable (and /healthz
	// is up), then the application takes over.
	var app web.Swap
	app.Set(web.StartingHandler())
	httpSrv := web.NewHTTPServer(cfg.Addr, &app, web.DefaultHTTPLimits(cfg.RecrawlTimeout))
	serveCtx, stopServe := context.WithCancel(ctx)
	defer stopServe()
	openCtx, cancelOpen := context.WithCancel(ctx)
	defer cancelOpen()
	var serveErr error
	served := make(chan struct{})
	go func() {
		defer close(served)
		serveErr = service.Serve(serveCtx, httpSrv, cfg.ShutdownTimeout)
		cancelOpen() // a server that cannot listen stops the wait for the database
	}()
	// stop shuts the server down and returns why it ended (nil after a clean shutdown).
	stop := func(cause error) error {
		stopServe()
		<-served
		if ctx.Err() != nil && serveErr == nil {
			return nil // asked to stop while starting
		}
		return errors.Join(cause, serveErr)
	}
	log.Info("dashboard listening", "addr", cfg.Addr)

	db, err := store.Open(openCtx, cfg.DatabaseURL, 10, log)
	if err != nil {
		return stop(err)
	}
	defer db.Close()
	if err := db.CheckSchema(ctx); err != nil {
		return stop(err)
	}
	if cfg.Password == "" {
		hosts := strings.Join(append([]string{"localhost", "127.0.0.1", "[::1]"}, cfg.AllowedHosts...), ", ")
		log.Warn("!!! TRAWL_DASHBOARD_PASSWORD is not set: the dashboard and its API need no login. They answer only "+
			"requests addressed to "+hosts+" (loopback names and TRAWL_DASHBOARD_ALLOWED_HOSTS), but anyone who can reach "+
			cfg.Addr+" by one of those names can use them — set a password before exposing it !!!", "allowed_hosts", hosts)
	}
	// The broker is dialed lazily and in the background: the dashboard serves (and says the
	// broker is unreachable) while RabbitMQ is down, instead of refusing to start.
	workerID := service.WorkerID("dashboard")
	consume, err := pipeline.NewConn(cfg.AMQPURL, workerID+"-consume", log)
	if err != nil {
		return stop(err)
	}
	defer consume.Close()
	topo := pipeline.Topology{Prefix: cfg.AMQPPrefix, DeliveryLimit: cfg.DeliveryLimit}
	workers := web.NewWorkers(nil)
	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { workers.Run(bg, consume, topo, log) })
	defer func() { stopBG(); wg.Wait() }()

	// Publishing (RPC requests, requeued dead letters) has its own connection, so a resource
	// alarm that blocks publishers never stops the heartbeat consumer.
	publish, err := pipeline.NewConn(cfg.AMQPURL, workerID+"-publish", log)
	if err != nil {
		return stop(err)
	}
	defer publish.Close()
	admin, err := pipeline.NewAdmin(cfg.AMQPManagementURL, cfg.AMQPURL, topo)
	if err != nil {
		return stop(err)
	}
	defer admin.Close()
	admin.WithFallback(consume)
	rpcClient := pipeline.NewRPCClient(publish, topo, cfg.RecrawlTimeout, log)
	defer rpcClient.Close()
	recrawler := &recrawl.Service{Store: db, Client: rpcClient, Timeout: cfg.RecrawlTimeout, Log: log}
	defer recrawler.Close()
	sender := pipeline.NewPublisher(publish, log)
	defer sender.Close()

	proxies, _ := parseProxies(cfg.TrustedProxies) // checked by Validate
	auth := web.NewAuth(cfg.Password)
	auth.Secure = cfg.SecureCookies
	srv := &web.Server{
		Store: db, Sessions: db, Log: log, Auth: auth, Workers: workers, BrokerUp: consume.Healthy,
		Queues: admin, Recrawl: recrawler, DeadLetters: &deadletter.Service{Store: db, Publisher: sender},
		RefreshInterval: cfg.RefreshInterval, RecrawlTimeout: cfg.RecrawlTimeout, AllowedHosts: cfg.AllowedHosts,
		TrustedProxies: proxies,
		Checks:         map[string]service.Check{"database": db.Ping},
	}
	httpSrv.RegisterOnShutdown(srv.Shutdown)
	reg := metrics.New(metrics.Dashboard, service.Version)
	app.Set(service.WithMetrics(metrics.Instrument(srv.Handler()), reg, cfg.MetricsAddr))
	mctx, stopMetrics := context.WithCancel(ctx)
	var mwg sync.WaitGroup
	defer mwg.Wait()
	defer stopMetrics() // runs before mwg.Wait
	mwg.Go(func() { service.ServeMetrics(mctx, cfg.MetricsAddr, reg, log) })
	log.Info("dashboard ready", "addr", cfg.Addr)
	<-served
	return serveErr
}
