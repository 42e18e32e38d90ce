package main

import (
	"context"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/deadletter"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/metrics"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/process"
	"github.com/trawlhq/trawl/service"
	"github.com/trawlhq/trawl/store"
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
	log := service.NewLogger(stdout, cfg.LogLevel, cfg.LogFormat, "processor")
	// Soft memory limit: the runtime, plus the batches in hand (the one committing holds its
	// results' text decoded and again encoded into its statements while the next one is
	// decoded: 160 KB a result leaves room for pages several times the usual size), plus the
	// URL-id cache (≤ 2 entries of ~150 bytes per slot). At the defaults, 124 MiB: the
	// processor's RSS stays under 150 MB (docs/PERFORMANCE.md).
	procs := service.TuneProcs(environ)
	gogc, memLimit := service.TuneGC(environ, 64<<20+int64(cfg.BatchSize)*160<<10+300*int64(cfg.URLCache))
	id := service.WorkerID("processor")
	log = log.With("worker", id)

	// The lifecycle starts what follows in this order and stops it in the order of its stages
	// (service.Stage): consumers, scheduler and loops, then publishers, then the broker, then the
	// database, then health.
	lc := service.NewLifecycle(ctx, cfg.ShutdownTimeout, log)
	db, err := service.Open(lc, "database", service.StageDatabase, func(ctx context.Context) (*store.Store, error) {
		return store.Open(ctx, cfg.DatabaseURL, int32(8+cfg.SearchIndexWorkers), log)
	}, (*store.Store).Close)
	if err != nil {
		return lc.Stop(err)
	}
	if err := lc.Start(service.Component{Name: "database schema", Start: db.CheckSchema}); err != nil {
		return lc.Stop(err)
	}
	db.SetURLCache(cfg.URLCache)
	broker, err := service.StartBroker(lc, cfg.Common, id, log)
	if err != nil {
		return lc.Stop(err)
	}

	sched := &process.Scheduler{
		Frontier: db, Pub: broker.Pub, Topology: broker.Topology, Interval: cfg.SchedulerInterval, Log: log,
		JobsPerMessage: cfg.JobsPerMessage,
		Limits: store.DispatchLimits{MaxInFlight: cfg.MaxInFlight, HostMaxInFlight: cfg.HostMaxInFlight, Hosts: 500, Lease: cfg.Lease,
			PaceAhead:       min(cfg.PaceAhead, cfg.Lease/2), // slots start well within their lease
			PacedHostsAhead: cfg.PacedHostsAhead},
	}
	if !cfg.IgnoreRobots {
		sched.Robots = db
		sched.Limits.Robots = &process.RobotsCache{}
	}
	sched.Sitemaps = db
	pruner := &process.Pruner{Store: db, FetchRetention: cfg.FetchHistoryRetention, RateRetention: cfg.RateRetention,
		Interval: 10 * time.Minute, Log: log}
	// Every processor deletes: purges skip rows others hold, so deleters share the work.
	deleter := &process.Deleter{Store: db, Batch: cfg.DeleteBatch, Log: log}
	var election *store.Election
	if cfg.SchedulerElection {
		election = db.Election(log)
		sched.Leader, pruner.Leader = election, election
	}
	// The search indexer yields to persisting: busy while results are held or were committed in
	// the last second.
	var lastApplied atomic.Int64
	var proc *process.Processor
	indexer := process.NewIndexer(db, cfg.SearchIndexBatch, cfg.SearchIndexBusyShare, func() bool {
		return proc.InFlight() > 0 || time.Since(time.Unix(0, lastApplied.Load())) < time.Second
	}, log)
	indexer.Workers = cfg.SearchIndexWorkers
	proc = &process.Processor{
		Store: db, Robots: db, Sitemaps: db, BatchSize: cfg.BatchSize, BatchWait: cfg.BatchWait, Log: log,
		Pub: broker.Pub, Topology: broker.Topology, IgnoreNoFollow: cfg.IgnoreRobots,
		Policy: process.Policy{RetryBase: cfg.RetryBase, RetryMax: cfg.RetryMax, Canon: crawlurl.Default},
		OnApplied: func(store.Applied) {
			lastApplied.Store(time.Now().UnixNano())
			sched.Wake()
			indexer.Wake()
		},
	}
	started := time.Now().UTC()
	host, _ := os.Hostname()
	reg := metrics.New(metrics.Processor, service.Version)
	reg.InFlight(proc.InFlight)

	lc.ServeHealth(cfg.Common, cfg.HealthAddr, map[string]service.Check{"broker": broker.Check, "database": db.Ping}, reg)
	if election != nil {
		lc.Go("election", service.StageWork, func(stop context.Context) error { election.Run(stop, sched.Wake); return nil })
	}
	// A scheduler round under way when the stop comes finishes under lc.Work().
	lc.Go("scheduler", service.StageWork, func(stop context.Context) error { sched.Run(stop, lc.Work()); return nil })
	lc.Go("search indexer", service.StageWork, func(stop context.Context) error { indexer.Run(stop); return nil })
	lc.Go("pruner", service.StageWork, func(stop context.Context) error { pruner.Run(stop); return nil })
	lc.Go("deleter", service.StageWork, func(stop context.Context) error { deleter.Run(stop); return nil })
	lc.Go("heartbeats", service.StageWork, func(stop context.Context) error {
		pipeline.RunHeartbeats(stop, broker.Pub, broker.Topology, cfg.HeartbeatInterval, log, func() message.Heartbeat {
			return message.Heartbeat{WorkerID: id, Kind: "processor", Host: host, Version: service.Version,
				Concurrency: cfg.BatchSize, InFlight: proc.InFlight(), Processed: proc.Processed(), StartedAt: started,
				Scheduler: election == nil || election.Leading(), RSSBytes: service.RSSBytes()}
		})
		return nil
	})
	log.Info("processor started", "batch_size", cfg.BatchSize, "queue", broker.Topology.PagesQueue(), "gogc", gogc, "gomemlimit", memLimit, "gomaxprocs", procs)
	consumer := &pipeline.Consumer{Conn: broker.Consume, Queue: broker.Topology.PagesQueue(),
		// Messages, not results: with crawlers sending up to 8 results a message this holds a
		// batch committing, one filling and more arriving; with one result a message (crawlers
		// set to 1) a batch at a time (docs/adr/0043-several-jobs-and-results-per-message.md).
		Prefetch: cfg.BatchSize, Topology: broker.Topology, Log: log}
	// Dead letters are mirrored into Postgres for the dashboard, each acked after its commit.
	dlq := &pipeline.Consumer{Conn: broker.Consume, Queue: broker.Topology.DeadLetterQueue(),
		Prefetch: 16, Topology: broker.Topology, Log: log}
	mirror := &deadletter.Mirror{Store: db, Log: log}
	lc.Go("dead-letter consumer", service.StageWork, func(stop context.Context) error {
		_ = dlq.Run(stop, func(d pipeline.Deliveries) { mirror.Serve(lc.Work(), d) })
		return nil
	})
	lc.Go("pages consumer", service.StageWork, func(stop context.Context) error {
		return consumer.Run(stop, func(d pipeline.Deliveries) { proc.Serve(lc.Work(), d) })
	})
	err = lc.Wait()
	log.Info("processor stopped", "processed", proc.Processed())
	return err
}
