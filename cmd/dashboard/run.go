package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/trawlhq/trawl/deadletter"
	"github.com/trawlhq/trawl/metrics"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/recrawl"
	"github.com/trawlhq/trawl/service"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/web"
)

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

	// The lifecycle starts what follows in this order and stops it in the order of its stages
	// (service.Stage): the web server and the workers view, then the RPC client and publishers,
	// then the broker, then the database, then the metrics server.
	lc := service.NewLifecycle(ctx, cfg.ShutdownTimeout, log)
	// Listen at once: until the database answers, pages say it is unreachable (and /healthz
	// is up), then the application takes over. The server is the dashboard's intake: a server
	// that cannot listen stops the wait for the database.
	var app web.Swap
	app.Set(web.StartingHandler())
	httpSrv := web.NewHTTPServer(cfg.Addr, &app, web.DefaultHTTPLimits(cfg.RecrawlTimeout))
	lc.Go("web server", service.StageWork, func(stop context.Context) error {
		return service.Serve(stop, httpSrv, cfg.ShutdownTimeout)
	})
	log.Info("dashboard listening", "addr", cfg.Addr)

	db, err := service.Open(lc, "database", service.StageDatabase, func(ctx context.Context) (*store.Store, error) {
		return store.Open(ctx, cfg.DatabaseURL, 10, log)
	}, (*store.Store).Close)
	if err != nil {
		return lc.Stop(err)
	}
	if err := lc.Start(service.Component{Name: "database schema", Start: db.CheckSchema}); err != nil {
		return lc.Stop(err)
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
		return lc.Stop(err)
	}
	lc.OnStop("consuming connection", service.StageBroker, consume.Close)
	topo := pipeline.Topology{Prefix: cfg.AMQPPrefix, DeliveryLimit: cfg.DeliveryLimit}
	workers := web.NewWorkers(nil)
	lc.Go("workers view", service.StageWork, func(stop context.Context) error {
		workers.Run(stop, consume, topo, log)
		return nil
	})

	// Publishing (RPC requests, requeued dead letters) has its own connection, so a resource
	// alarm that blocks publishers never stops the heartbeat consumer.
	publish, err := pipeline.NewConn(cfg.AMQPURL, workerID+"-publish", log)
	if err != nil {
		return lc.Stop(err)
	}
	lc.OnStop("publishing connection", service.StageBroker, publish.Close)
	admin, err := pipeline.NewAdmin(cfg.AMQPManagementURL, cfg.AMQPURL, topo)
	if err != nil {
		return lc.Stop(err)
	}
	lc.OnStop("management client", service.StageBroker, func() error { admin.Close(); return nil })
	admin.WithFallback(consume)
	rpcClient := pipeline.NewRPCClient(publish, topo, cfg.RecrawlTimeout, log)
	lc.OnStop("rpc client", service.StageFlush, rpcClient.Close)
	recrawler := &recrawl.Service{Store: db, Client: rpcClient, Timeout: cfg.RecrawlTimeout, Log: log}
	lc.OnStop("recrawl service", service.StageFlush, func() error { recrawler.Close(); return nil })
	sender := pipeline.NewPublisher(publish, log)
	lc.OnStop("dead-letter sender", service.StageFlush, sender.Close)

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
	lc.ServeMetrics(cfg.MetricsAddr, reg)
	log.Info("dashboard ready", "addr", cfg.Addr)
	return lc.Wait()
}
