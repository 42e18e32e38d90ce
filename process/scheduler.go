package process

import (
	"context"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/metrics"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/store"
)

// Frontier is what the scheduler needs from the database.
type Frontier interface {
	Dispatch(ctx context.Context, lim store.DispatchLimits) ([]store.Job, error)
	Undispatch(ctx context.Context, ids []int64) error
	ReapLeases(ctx context.Context) (int64, error)
	// RequeueDueTargets recrawls done targets whose recrawl interval has passed.
	RequeueDueTargets(ctx context.Context) (int, error)
}

// RecrawlCheckInterval is how often the scheduler looks for targets due for a re-crawl.
const RecrawlCheckInterval = 10 * time.Second

// Leader says whether this scheduler is the one that works (store.Election).
type Leader interface {
	Leading() bool
}

// Publisher is what the scheduler needs from the broker.
type Publisher interface {
	Publish(ctx context.Context, exchange, key string, msgs ...message.Encoded) error
}

// Scheduler leases due URLs and publishes them as crawl jobs. It keeps the broker's crawl queue
// shallow (at most Limits.MaxInFlight URLs are out at once), so per-host timing is decided here,
// close to the fetch, and not lost in a long backlog.
type Scheduler struct {
	Frontier Frontier
	Pub      Publisher
	Topology pipeline.Topology
	Limits   store.DispatchLimits
	Interval time.Duration
	Log      *slog.Logger
	// Robots, when set, dispatches robots.txt jobs (see robots.go); Limits.Robots must then be
	// set too, so that page URLs wait for their host's file.
	Robots RobotsFrontier
	// Sitemaps, when set, dispatches sitemap jobs (see sitemap.go).
	Sitemaps SitemapFrontier
	// Leader, when set, lets this scheduler work only while it leads, so one scheduler per
	// database dispatches, reaps leases and re-queues targets; the others stand by until they
	// lead. Nil: always work (any number of schedulers is safe).
	Leader Leader
	// JobsPerMessage is the most crawl jobs one message carries (message.JobMessages); 0 or 1
	// publishes every job on its own, which crawlers older than bundles need.
	JobsPerMessage int

	wakeOnce sync.Once
	wake     chan struct{}

	leading bool
}

// Wake asks for a tick as soon as possible. It never blocks.
func (s *Scheduler) Wake() {
	select {
	case s.wakeChan() <- struct{}{}:
	default:
	}
}

func (s *Scheduler) wakeChan() chan struct{} {
	s.wakeOnce.Do(func() { s.wake = make(chan struct{}, 1) })
	return s.wake
}

// Run ticks until ctx ends. Each round of work runs under work, which the caller lets outlive
// ctx (the processor's service.WorkContext, TRAWL_SHUTDOWN_TIMEOUT): a dispatch cut off between
// its commit and its publish would leave its URLs leased, and unfetched, until the lease
// expires. No new round, and no further dispatch within a round, starts once ctx has ended.
func (s *Scheduler) Run(ctx, work context.Context) {
	wake := s.wakeChan()
	ticker := time.NewTicker(s.Interval)
	defer ticker.Stop()
	lastReap, lastRecrawl := time.Time{}, time.Time{}
	for {
		if ctx.Err() == nil && s.lead() {
			lastReap, lastRecrawl = s.work(work, ctx, lastReap, lastRecrawl)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-wake:
		}
	}
}

// lead reports whether this scheduler should work now, logging changes of leadership.
func (s *Scheduler) lead() bool {
	if s.Leader == nil {
		metrics.SchedulerLeader.Set(1) // every scheduler works
		return true
	}
	ok := s.Leader.Leading()
	switch {
	case ok && !s.leading:
		s.Log.Info("this processor now runs the scheduler")
		metrics.SchedulerLeader.Set(1)
	case !ok && s.leading:
		s.Log.Warn("this processor no longer runs the scheduler; another takes over")
		metrics.SchedulerLeader.Set(0)
	}
	s.leading = ok
	return ok
}

// work does one round of the scheduler's duties under ctx: re-queue targets due for a re-crawl
// and reap expired leases when their time has come, then dispatch until little is due or until
// stop ends.
func (s *Scheduler) work(ctx, stop context.Context, lastReap, lastRecrawl time.Time) (time.Time, time.Time) {
	if time.Since(lastRecrawl) >= RecrawlCheckInterval {
		if n, err := s.Frontier.RequeueDueTargets(ctx); err != nil {
			if ctx.Err() == nil {
				s.Log.Warn("requeue targets due for a re-crawl", "err", err)
			}
		} else if n > 0 {
			s.Log.Info("targets re-crawled on their interval", "targets", n)
		}
		lastRecrawl = time.Now()
	}
	if time.Since(lastReap) >= time.Second {
		if n, err := s.Frontier.ReapLeases(ctx); err != nil {
			if ctx.Err() == nil {
				s.Log.Warn("reap leases", "err", err)
			}
		} else if n > 0 {
			metrics.LeaseExpiries.Add(float64(n))
			s.Log.Info("expired leases returned to queue", "urls", n)
		}
		lastReap = time.Now()
	}
	for stop.Err() == nil {
		n, err := s.Tick(ctx)
		if err != nil || n < s.Limits.MaxInFlight/4 {
			break // a big dispatch means more may be due: go again at once
		}
	}
	return lastReap, lastRecrawl
}

// Tick dispatches once and returns how many jobs were published.
func (s *Scheduler) Tick(ctx context.Context) (int, error) {
	s.dispatchRobots(ctx)
	s.dispatchSitemaps(ctx)
	jobs, err := s.Frontier.Dispatch(ctx, s.Limits)
	if err != nil {
		metrics.DispatchErrors.Inc()
		if ctx.Err() == nil {
			s.Log.Warn("dispatch", "err", err)
		}
		return 0, err
	}
	if len(jobs) == 0 {
		return 0, nil
	}
	crawlJobs := make([]message.CrawlJob, len(jobs))
	for i, j := range jobs {
		crawlJobs[i] = message.CrawlJob{
			Envelope: message.NewEnvelope(message.TypeCrawlJob),
			Kind:     message.KindPage, URLID: j.URLID, TargetID: j.TargetID, URL: j.URL,
			Depth: j.Depth, Dispatch: j.Dispatch, ETag: j.ETag, LastModified: j.LastModified, LeaseUntil: j.LeaseUntil,
			IntervalMS: j.IntervalMS, DelayMS: j.DelayMS,
		}
	}
	if err := s.publishJobs(ctx, "crawl", crawlJobs, func(ctx context.Context) error {
		ids := make([]int64, len(jobs))
		for i, j := range jobs {
			ids[i] = j.URLID
		}
		return s.Frontier.Undispatch(ctx, ids)
	}); err != nil {
		metrics.DispatchErrors.Inc()
		return 0, err
	}
	metrics.Dispatched.Add(float64(len(jobs)))
	s.Log.Debug("dispatched", "jobs", len(jobs))
	return len(jobs), nil
}

// publishJobs publishes jobs (what names them in logs) to the crawl exchange with confirms. If
// publishing fails, undispatch returns the leased work to the frontier at once; some jobs may
// have reached the queue, which at worst fetches a URL twice (the processor absorbs that), and
// if even undispatch fails the leases bring the work back later.
func (s *Scheduler) publishJobs(ctx context.Context, what string, jobs []message.CrawlJob, undispatch func(context.Context) error) error {
	msgs, err := jobMessages(jobs, s.JobsPerMessage)
	if err != nil {
		s.Log.Error("encode "+what+" jobs", "err", err)
		return err
	}
	if err := s.Pub.Publish(ctx, s.Topology.CrawlExchange(), pipeline.KeyJob, msgs...); err != nil {
		if uerr := undispatch(context.WithoutCancel(ctx)); uerr != nil {
			s.Log.Warn("undispatch "+what+" jobs after failed publish; leases will expire instead", "err", uerr)
		}
		s.Log.Warn("publish "+what+" jobs", "err", err, "jobs", len(jobs))
		return err
	}
	return nil
}

// jobMessages encodes a dispatch's jobs: the slots of each paced host in one message of their
// own, in order, so that one crawler fetches them one after another (message.CrawlJob.
// IntervalMS); the other jobs packed perMessage to a message.
func jobMessages(jobs []message.CrawlJob, perMessage int) ([]message.Encoded, error) {
	var rest []message.CrawlJob
	var hosts []string
	paced := map[string][]message.CrawlJob{}
	for _, j := range jobs {
		if !j.Paced() {
			rest = append(rest, j)
			continue
		}
		h := j.URL
		if u, err := url.Parse(j.URL); err == nil {
			h = crawlurl.HostKey(u) // the politeness key, as store.Job.Host
		}
		if _, ok := paced[h]; !ok {
			hosts = append(hosts, h)
		}
		paced[h] = append(paced[h], j)
	}
	var msgs []message.Encoded
	for _, h := range hosts {
		m, err := message.JobMessages(paced[h], len(paced[h]))
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m...)
	}
	if len(rest) == 0 {
		return msgs, nil
	}
	m, err := message.JobMessages(rest, perMessage)
	return append(msgs, m...), err
}
