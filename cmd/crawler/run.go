package main

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/trawlhq/trawl/crawl"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/metrics"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/service"
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
	if cmd == "healthcheck" {
		return service.Healthcheck(ctx, cfg.HealthAddr)
	}
	log := service.NewLogger(stdout, cfg.LogLevel, cfg.LogFormat, "crawler")
	// Live heap: small, but up to a body and its text per fetch with large pages.
	procs := service.TuneProcs(environ)
	gogc, memLimit := service.TuneGC(environ, 256<<20+int64(cfg.Concurrency)*int64(cfg.MaxBodyBytes))
	id := service.WorkerID("crawler")
	log = log.With("worker", id)
	allowNets, _ := parsePrefixes(cfg.AllowedNetworks) // checked by Validate
	if len(allowNets) > 0 && !cfg.AllowPrivate {
		log.Warn("TRAWL_ALLOWED_NETWORKS: the crawler may fetch these private networks", "networks", cfg.AllowedNetworks)
	}
	if cfg.AllowPrivate {
		log.Warn("TRAWL_ALLOW_PRIVATE_NETWORKS is on: the crawler will fetch loopback and private addresses")
	}

	// The lifecycle starts what follows in this order and stops it in the order of its stages
	// (service.Stage): consumers and heartbeats, then publishers, then the broker, then health.
	lc := service.NewLifecycle(ctx, cfg.ShutdownTimeout, log)
	broker, err := service.StartBroker(lc, cfg.Common, id, log)
	if err != nil {
		return lc.Stop(err)
	}

	// In-flight fetches run under lc.Work(), which outlives ctx by the shutdown timeout.
	worker := &crawl.Worker{
		Fetcher: crawl.NewFetcher(lc.Work(), crawl.FetchConfig{
			UserAgent: cfg.UserAgent, Timeout: cfg.FetchTimeout, ConnectTimeout: cfg.ConnectTimeout,
			FirstByteTimeout: cfg.FirstByteTimeout, MaxBodyBytes: cfg.MaxBodyBytes,
			Concurrency: cfg.Concurrency, Guard: crawl.Guard{AllowPrivate: cfg.AllowPrivate, Ports: cfg.AllowedPorts, Allow: allowNets},
		}),
		Pub: broker.Pub, Topology: broker.Topology, Concurrency: cfg.Concurrency, Linger: cfg.PublishLinger, ID: id, Log: log,
		ResultsPerMessage: cfg.ResultsPerMessage,
	}
	started := time.Now().UTC()
	host, _ := os.Hostname()
	reg := metrics.New(metrics.Crawler, service.Version)
	reg.InFlight(worker.InFlight)
	lc.ServeHealth(cfg.Common, cfg.HealthAddr, map[string]service.Check{"broker": broker.Check}, reg)

	lc.Go("heartbeats", service.StageWork, func(stop context.Context) error {
		pipeline.RunHeartbeats(stop, broker.Pub, broker.Topology, cfg.HeartbeatInterval, log, func() message.Heartbeat {
			return message.Heartbeat{WorkerID: id, Kind: "crawler", Host: host, Version: service.Version,
				Concurrency: cfg.Concurrency, InFlight: worker.InFlight(), Processed: worker.Processed(), StartedAt: started,
				RSSBytes: service.RSSBytes()}
		})
		return nil
	})
	// Re-crawl RPC requests: their own consumer, so a deep crawl queue never delays them.
	replies := pipeline.NewPublisher(broker.Publish, log)
	lc.OnStop("rpc replies", service.StageFlush, replies.Close)
	recrawl := &crawl.RecrawlServer{Fetcher: worker.Fetcher, Pub: broker.Pub, Replies: replies,
		Topology: broker.Topology, Concurrency: cfg.RPCConcurrency, ID: id, Log: log}
	rpc := &pipeline.Consumer{Conn: broker.Consume, Queue: broker.Topology.RecrawlQueue(),
		Prefetch: cfg.RPCConcurrency, Topology: broker.Topology, Log: log}
	lc.Go("recrawl consumer", service.StageWork, func(stop context.Context) error {
		_ = rpc.Run(stop, func(d pipeline.Deliveries) { recrawl.Serve(lc.Work(), stop.Done(), d) })
		return nil
	})
	log.Info("crawler started", "concurrency", cfg.Concurrency, "queue", broker.Topology.CrawlQueue(), "gogc", gogc, "gomemlimit", memLimit, "gomaxprocs", procs)
	consumer := &pipeline.Consumer{Conn: broker.Consume, Queue: broker.Topology.CrawlQueue(),
		// Messages of up to 8 jobs: docs/adr/0043-several-jobs-and-results-per-message.md.
		Prefetch: cfg.Concurrency, Topology: broker.Topology, Log: log}
	lc.Go("crawl consumer", service.StageWork, func(stop context.Context) error {
		return consumer.Run(stop, func(d pipeline.Deliveries) { worker.Serve(lc.Work(), stop.Done(), d) })
	})
	err = lc.Wait()
	log.Info("crawler stopped", "processed", worker.Processed())
	return err
}
