package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trawlhq/trawl/crawl"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/metrics"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/robots"
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
	// ConnectTimeout and FirstByteTimeout default (when unset or 0) to min(10s, FetchTimeout)
	// and FetchTimeout.
	ConnectTimeout   time.Duration `env:"TRAWL_CONNECT_TIMEOUT"`
	FirstByteTimeout time.Duration `env:"TRAWL_FIRST_BYTE_TIMEOUT"`
	AllowedPorts     []int         `env:"TRAWL_ALLOWED_PORTS" envDefault:"80,443"`
	AllowedNetworks  []string      `env:"TRAWL_ALLOWED_NETWORKS"`
	MaxBodyBytes     int           `env:"TRAWL_MAX_BODY_BYTES" envDefault:"10485760"`
	// RPCConcurrency is how many re-crawl RPC requests this crawler works at once.
	RPCConcurrency int `env:"TRAWL_CRAWLER_RPC_CONCURRENCY" envDefault:"4"`
	// PublishLinger is how long a fetched result may wait for others to be published with it.
	PublishLinger time.Duration `env:"TRAWL_CRAWLER_PUBLISH_LINGER" envDefault:"15ms"`
	// ResultsPerMessage is the most fetch results one message carries (1: one per message, for
	// processors older than messages of several results).
	ResultsPerMessage int `env:"TRAWL_CRAWLER_RESULTS_PER_MESSAGE" envDefault:"8"`
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	switch {
	case c.Concurrency < 1 || c.Concurrency > 4096:
		return errors.New("TRAWL_CRAWLER_CONCURRENCY: must be between 1 and 4096")
	case c.ResultsPerMessage < 1 || c.ResultsPerMessage > message.MaxResultsPerMessage:
		return fmt.Errorf("TRAWL_CRAWLER_RESULTS_PER_MESSAGE: must be between 1 and %d", message.MaxResultsPerMessage)
	case c.PublishLinger < 0 || c.PublishLinger > time.Second:
		return errors.New("TRAWL_CRAWLER_PUBLISH_LINGER: must be between 0 and 1s")
	case c.FetchTimeout < time.Second:
		return errors.New("TRAWL_FETCH_TIMEOUT: must be at least 1s")
	case c.ConnectTimeout != 0 && (c.ConnectTimeout < 100*time.Millisecond || c.ConnectTimeout > c.FetchTimeout):
		return errors.New("TRAWL_CONNECT_TIMEOUT: must be between 100ms and TRAWL_FETCH_TIMEOUT")
	case c.FirstByteTimeout != 0 && (c.FirstByteTimeout < 100*time.Millisecond || c.FirstByteTimeout > c.FetchTimeout):
		return errors.New("TRAWL_FIRST_BYTE_TIMEOUT: must be between 100ms and TRAWL_FETCH_TIMEOUT")
	case len(c.AllowedPorts) == 0 || slices.ContainsFunc(c.AllowedPorts, func(p int) bool { return p < 1 || p > 65535 }):
		return errors.New("TRAWL_ALLOWED_PORTS: must be a comma-separated list of ports between 1 and 65535")
	case !validPrefixes(c.AllowedNetworks):
		return errors.New("TRAWL_ALLOWED_NETWORKS: must be a comma-separated list of CIDR prefixes, e.g. 10.1.2.0/24")
	case c.MaxBodyBytes < 1024:
		return errors.New("TRAWL_MAX_BODY_BYTES: must be at least 1024")
	case c.HeartbeatInterval < 100*time.Millisecond:
		return errors.New("TRAWL_HEARTBEAT_INTERVAL: must be at least 100ms")
	case c.UserAgent == "":
		return errors.New("TRAWL_USER_AGENT: must not be empty")
	case robots.ProductToken(c.UserAgent) == "":
		return errors.New("TRAWL_USER_AGENT: must start with a product token (letters, digits, '-', '_'), which robots.txt groups are matched against")
	case strings.ContainsFunc(c.UserAgent, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return errors.New("TRAWL_USER_AGENT: must not contain control characters")
	case !strings.Contains(c.UserAgent, "http://") && !strings.Contains(c.UserAgent, "https://") && !strings.Contains(c.UserAgent, "@"):
		return errors.New("TRAWL_USER_AGENT: must include a contact URL or e-mail address, e.g. \"TrawlBot/0.1 (+https://example.com/bot)\"")
	case c.RPCConcurrency < 1 || c.RPCConcurrency > 256:
		return errors.New("TRAWL_CRAWLER_RPC_CONCURRENCY: must be between 1 and 256")
	}
	return nil
}

func validPrefixes(ss []string) bool {
	_, err := parsePrefixes(ss)
	return err == nil
}

func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// cli is the crawler's command line.
var cli = service.CLI{
	Binary: "crawler",
	Summary: "Trawl's fetch worker. Without a command it takes crawl jobs from RabbitMQ, fetches them\n" +
		"and publishes the results back to RabbitMQ, until SIGINT or SIGTERM.",
	Commands: []service.Command{
		{Name: "healthcheck", Summary: "Ask the running crawler's /healthz on TRAWL_HEALTH_ADDR; exit 0 when healthy."},
	},
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

	broker, err := service.OpenBroker(ctx, cfg.Common, id, log)
	if err != nil {
		return err
	}
	defer broker.Close()

	// In-flight fetches run under workCtx, which outlives ctx by the shutdown timeout.
	workCtx, cancelWork := service.WorkContext(ctx, cfg.ShutdownTimeout)
	defer cancelWork()

	worker := &crawl.Worker{
		Fetcher: crawl.NewFetcher(workCtx, crawl.FetchConfig{
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

	var wg sync.WaitGroup
	wg.Go(func() { service.ServeMetrics(ctx, cfg.MetricsAddr, reg, log) })
	wg.Go(func() {
		health := service.WithPprof(service.WithMetrics(service.HealthHandler(map[string]service.Check{"broker": broker.Check}), reg, cfg.MetricsAddr), cfg.PProf)
		srv := &http.Server{Addr: cfg.HealthAddr, Handler: health, ReadHeaderTimeout: 5 * time.Second}
		if err := service.Serve(ctx, srv, 5*time.Second); err != nil {
			log.Error("health server", "err", err)
		}
	})
	wg.Go(func() {
		pipeline.RunHeartbeats(ctx, broker.Pub, broker.Topology, cfg.HeartbeatInterval, log, func() message.Heartbeat {
			return message.Heartbeat{WorkerID: id, Kind: "crawler", Host: host, Version: service.Version,
				Concurrency: cfg.Concurrency, InFlight: worker.InFlight(), Processed: worker.Processed(), StartedAt: started}
		})
	})
	log.Info("crawler started", "concurrency", cfg.Concurrency, "queue", broker.Topology.CrawlQueue(), "gogc", gogc, "gomemlimit", memLimit, "gomaxprocs", procs)
	consumer := &pipeline.Consumer{Conn: broker.Consume, Queue: broker.Topology.CrawlQueue(),
		// Messages of up to 8 jobs: docs/adr/0043-several-jobs-and-results-per-message.md.
		Prefetch: cfg.Concurrency, Topology: broker.Topology, Log: log}
	// Re-crawl RPC requests: their own consumer, so a deep crawl queue never delays them.
	replies := pipeline.NewPublisher(broker.Publish, log)
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
