package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/service"
)

// Config is the processor's configuration.
type Config struct {
	service.Common
	DatabaseURL       string        `env:"TRAWL_DATABASE_URL" envDefault:"postgres://postgres@127.0.0.1:5432/trawl?sslmode=disable"`
	HealthAddr        string        `env:"TRAWL_HEALTH_ADDR" envDefault:":8082"`
	HeartbeatInterval time.Duration `env:"TRAWL_HEARTBEAT_INTERVAL" envDefault:"5s"`
	BatchSize         int           `env:"TRAWL_PROCESSOR_BATCH_SIZE" envDefault:"200"`
	BatchWait         time.Duration `env:"TRAWL_PROCESSOR_BATCH_WAIT" envDefault:"50ms"`
	SchedulerInterval time.Duration `env:"TRAWL_SCHEDULER_INTERVAL" envDefault:"250ms"`
	// SchedulerElection runs one scheduler per database (a session advisory lock); off, every
	// processor's scheduler works (needed behind a transaction-pooling proxy such as PgBouncer
	// in transaction mode, where session locks do not hold).
	SchedulerElection bool          `env:"TRAWL_SCHEDULER_ELECTION" envDefault:"true"`
	MaxInFlight       int           `env:"TRAWL_SCHEDULER_MAX_INFLIGHT" envDefault:"4000"`
	HostMaxInFlight   int           `env:"TRAWL_HOST_MAX_INFLIGHT" envDefault:"2000"`
	Lease             time.Duration `env:"TRAWL_LEASE_DURATION" envDefault:"5m"`
	// JobsPerMessage is the most crawl jobs one message carries (1: one per message, for
	// crawlers older than messages of several jobs).
	JobsPerMessage int `env:"TRAWL_SCHEDULER_JOBS_PER_MESSAGE" envDefault:"8"`
	// PaceAhead is how far ahead a host with a rate limit is dispatched: its next slots, each
	// with the delay after which a crawler may start it (0: one URL at a time, once its slot has
	// come, for crawlers that ignore those delays). At most half the lease is used.
	PaceAhead time.Duration `env:"TRAWL_SCHEDULER_PACE_AHEAD" envDefault:"4s"`
	// PacedHostsAhead caps how many paced hosts have slots dispatched ahead at once (0: no cap);
	// each holds one of a crawler's prefetched messages while its slots run.
	PacedHostsAhead int           `env:"TRAWL_SCHEDULER_PACED_HOSTS_AHEAD" envDefault:"32"`
	RetryBase       time.Duration `env:"TRAWL_RETRY_BASE" envDefault:"5s"`
	RetryMax        time.Duration `env:"TRAWL_RETRY_MAX" envDefault:"1h"`
	// URLCache is how many frontier URL ids ApplyResults remembers (0: off).
	URLCache int `env:"TRAWL_PROCESSOR_URL_CACHE" envDefault:"100000"`
	// SearchIndexBatch and SearchIndexBusyShare tune the background search indexer.
	SearchIndexBatch     int     `env:"TRAWL_SEARCH_INDEX_BATCH" envDefault:"100"`
	SearchIndexBusyShare float64 `env:"TRAWL_SEARCH_INDEX_BUSY_SHARE" envDefault:"0.25"`
	SearchIndexWorkers   int     `env:"TRAWL_SEARCH_INDEX_WORKERS" envDefault:"2"`
	// FetchHistoryRetention and RateRetention are how long fetch history and per-second rates
	// are kept (0: forever); the leading processor prunes older rows (process.Pruner).
	FetchHistoryRetention time.Duration `env:"TRAWL_FETCH_HISTORY_RETENTION" envDefault:"2160h"`
	RateRetention         time.Duration `env:"TRAWL_RATE_RETENTION" envDefault:"168h"`
	// DeleteBatch is how many URLs of a deleted target one transaction removes (process.Deleter).
	DeleteBatch int `env:"TRAWL_TARGET_DELETE_BATCH" envDefault:"1000"`
	// IgnoreRobots turns robots.txt off for every target, and with it the nofollow of robots meta
	// tags and X-Robots-Tag headers (for crawling your own sites only).
	IgnoreRobots bool `env:"TRAWL_IGNORE_ROBOTS" envDefault:"false"`
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	switch {
	case c.DatabaseURL == "":
		return errors.New("TRAWL_DATABASE_URL: must not be empty")
	case c.BatchSize < 1 || c.BatchSize > 10000:
		return errors.New("TRAWL_PROCESSOR_BATCH_SIZE: must be between 1 and 10000")
	case c.BatchWait <= 0:
		return errors.New("TRAWL_PROCESSOR_BATCH_WAIT: must be positive")
	case c.SchedulerInterval < 10*time.Millisecond:
		return errors.New("TRAWL_SCHEDULER_INTERVAL: must be at least 10ms")
	case c.MaxInFlight < 1:
		return errors.New("TRAWL_SCHEDULER_MAX_INFLIGHT: must be at least 1")
	case c.HostMaxInFlight < 1:
		return errors.New("TRAWL_HOST_MAX_INFLIGHT: must be at least 1")
	case c.JobsPerMessage < 1 || c.JobsPerMessage > message.MaxJobsPerMessage:
		return fmt.Errorf("TRAWL_SCHEDULER_JOBS_PER_MESSAGE: must be between 1 and %d", message.MaxJobsPerMessage)
	case c.Lease < time.Second:
		return errors.New("TRAWL_LEASE_DURATION: must be at least 1s")
	case c.PaceAhead < 0 || c.PaceAhead > time.Minute:
		return errors.New("TRAWL_SCHEDULER_PACE_AHEAD: must be between 0 and 1m")
	case c.PacedHostsAhead < 0:
		return errors.New("TRAWL_SCHEDULER_PACED_HOSTS_AHEAD: must not be negative")
	case c.PaceAhead > 0 && c.JobsPerMessage == 1:
		return errors.New("TRAWL_SCHEDULER_PACE_AHEAD: must be 0 when TRAWL_SCHEDULER_JOBS_PER_MESSAGE is 1 (crawlers that old fetch a paced host's slots at once)")
	case c.RetryBase <= 0 || c.RetryMax < c.RetryBase:
		return errors.New("TRAWL_RETRY_BASE / TRAWL_RETRY_MAX: need 0 < base <= max")
	case c.URLCache < 0:
		return errors.New("TRAWL_PROCESSOR_URL_CACHE: must not be negative")
	case c.SearchIndexBatch < 1 || c.SearchIndexBatch > 10000:
		return errors.New("TRAWL_SEARCH_INDEX_BATCH: must be between 1 and 10000")
	case c.SearchIndexWorkers < 1 || c.SearchIndexWorkers > 64:
		return errors.New("TRAWL_SEARCH_INDEX_WORKERS: must be between 1 and 64")
	case !(c.SearchIndexBusyShare > 0 && c.SearchIndexBusyShare <= 1):
		return errors.New("TRAWL_SEARCH_INDEX_BUSY_SHARE: must be in (0, 1]")
	case c.FetchHistoryRetention != 0 && c.FetchHistoryRetention < time.Hour:
		return errors.New("TRAWL_FETCH_HISTORY_RETENTION: must be 0 (keep forever) or at least 1h")
	case c.RateRetention != 0 && c.RateRetention < time.Hour:
		return errors.New("TRAWL_RATE_RETENTION: must be 0 (keep forever) or at least 1h")
	case c.DeleteBatch < 1 || c.DeleteBatch > 100000:
		return errors.New("TRAWL_TARGET_DELETE_BATCH: must be between 1 and 100000")
	case c.HeartbeatInterval < 100*time.Millisecond:
		return errors.New("TRAWL_HEARTBEAT_INTERVAL: must be at least 100ms")
	}
	return nil
}

// cli is the processor's command line.
var cli = service.CLI{
	Binary: "processor",
	Summary: "Trawl's processor. Without a command it persists fetch results from RabbitMQ into PostgreSQL,\n" +
		"grows the frontier and schedules what is due, until SIGINT or SIGTERM.",
	Commands: []service.Command{
		{Name: "healthcheck", Summary: "Ask the running processor's /healthz on TRAWL_HEALTH_ADDR; exit 0 when healthy."},
	},
}
