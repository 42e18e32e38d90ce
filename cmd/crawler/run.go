package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/trawlhq/trawl/crawl"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/service"
)

// Config is the crawler's configuration.
type Config struct {
	service.Common
	HealthAddr        string        `env:"TRAWL_HEALTH_ADDR" envDefault:":8081"`
	HeartbeatInterval time.Duration `env:"TRAWL_HEARTBEAT_INTERVAL" envDefault:"5s"`
	Concurrency       int           `env:"TRAWL_CRAWLER_CONCURRENCY" envDefault:"32"`
	AllowPrivate      bool          `env:"TRAWL_ALLOW_PRIVATE_NETWORKS" envDefault:"false"`
	UserAgent         string        `env:"TRAWL_USER_AGENT" envDefault:"TrawlBot/0.1 (+https://github.com/trawlhq/trawl)"`
	FetchTimeout      time.Duration `env:"TRAWL_FETCH_TIMEOUT" envDefault:"30s"`
	MaxBodyBytes      int           `env:"TRAWL_MAX_BODY_BYTES" envDefault:"10485760"`

	// RPCConcurrency is how many re-crawl RPC requests this crawler works at once.
	RPCConcurrency int `env:"TRAWL_CRAWLER_RPC_CONCURRENCY" envDefault:"4"`
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	switch {
	case c.Concurrency < 1 || c.Concurrency > 4096:
		return errors.New("TRAWL_CRAWLER_CONCURRENCY: must be between 1 and 4096")
	case c.FetchTimeout < time.Second:
		return errors.New("TRAWL_FETCH_TIMEOUT: must be at least 1s")
	case c.MaxBodyBytes < 1024:
		return errors.New("TRAWL_MAX_BODY_BYTES: must be at least 1024")
	case c.HeartbeatInterval < 100*time.Millisecond:
		return errors.New("TRAWL_HEARTBEAT_INTERVAL: must be at least 100ms")
	case c.UserAgent == "":
		return errors.New("TRAWL_USER_AGENT: must not be empty")
	case c.RPCConcurrency < 1 || c.RPCConcurrency > 256:
		return errors.New("TRAWL_CRAWLER_RPC_CONCURRENCY: must be between 1 and 256")
	}
	return nil
}

func run(ctx context.Context, args, environ []string, stdout io.Writer) error {
	var cfg Config
	if err := service.LoadConfig(environ, &cfg); err != nil {
		return err
	}
	if len(args) > 1 && args[1] == "healthcheck" {
		return service.Healthcheck(ctx, cfg.HealthAddr)
	}
	log := service.NewLogger(stdout, cfg.LogLevel, cfg.LogFormat, "crawler")
	id := service.WorkerID("crawler")
	log = log.With("worker", id)
	if cfg.AllowPrivate {
		log.Warn("TRAWL_ALLOW_PRIVATE_NETWORKS is on: the crawler will fetch loopback and private addresses")
	}

	broker, err := service.OpenBroker(ctx, cfg.Common, id, log)
	if err != nil {
		return err
	}
	defer broker.Close()

	// In-flight fetches run under workCtx, which outlives ctx by the shutdown timeout.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	context.AfterFunc(ctx, func() { time.AfterFunc(cfg.ShutdownTimeout, cancelWork) })

	worker := &crawl.Worker{
		Fetcher: crawl.NewFetcher(workCtx, crawl.FetchConfig{
			UserAgent: cfg.UserAgent, Timeout: cfg.FetchTimeout, MaxBodyBytes: cfg.MaxBodyBytes,
			Concurrency: cfg.Concurrency, Guard: crawl.Guard{AllowPrivate: cfg.AllowPrivate},
		}),
		Pub: broker.Pub, Topology: broker.Topology, Concurrency: cfg.Concurrency, ID: id, Log: log,
	}
	started := time.Now().UTC()
	host, _ := os.Hostname()

	var wg sync.WaitGroup
	wg.Go(func() {
		srv := &http.Server{Addr: cfg.HealthAddr, Handler: service.HealthHandler(map[string]service.Check{"broker": broker.Check}), ReadHeaderTimeout: 5 * time.Second}
		if err := service.Serve(ctx, srv, 5*time.Second); err != nil {
			log.Error("health server", "err", err)
		}
	})
	wg.Go(func() {
		pipeline.RunHeartbeats(ctx, broker.Pub, broker.Topology, cfg.HeartbeatInterval, log, func() pipeline.Heartbeat {
			return pipeline.Heartbeat{WorkerID: id, Kind: "crawler", Host: host, Version: service.Version,
				Concurrency: cfg.Concurrency, InFlight: worker.InFlight(), Processed: worker.Processed(), StartedAt: started}
		})
	})
	log.Info("crawler started", "concurrency", cfg.Concurrency, "queue", broker.Topology.CrawlQueue())
	consumer := &pipeline.Consumer{Conn: broker.Consume, Queue: broker.Topology.CrawlQueue(),
		Prefetch: cfg.Concurrency, Topology: broker.Topology, Log: log}
	// Re-crawl RPC requests: their own consumer, so a deep crawl queue never delays them.
	replies := pipeline.NewSender(broker.Publish, log)
	defer replies.Close()
	recrawl := &crawl.RecrawlServer{Fetcher: worker.Fetcher, Pub: broker.Pub, Replies: replies,
		Topology: broker.Topology, Concurrency: cfg.RPCConcurrency, ID: id, Log: log}
	rpc := &pipeline.Consumer{Conn: broker.Consume, Queue: broker.Topology.RecrawlQueue(),
		Prefetch: cfg.RPCConcurrency, Topology: broker.Topology, Log: log}
	wg.Go(func() { _ = rpc.Run(ctx, func(d pipeline.Deliveries) { recrawl.Serve(workCtx, ctx.Done(), d) }) })
	err = consumer.Run(ctx, func(d pipeline.Deliveries) { worker.Serve(workCtx, ctx.Done(), d) })
	wg.Wait()
	log.Info("crawler stopped", "processed", worker.Processed())
	return err
}
