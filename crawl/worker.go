package crawl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trawlhq/trawl/internal/failpoint"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/metrics"
	"github.com/trawlhq/trawl/pipeline"
)

// Publisher is what the re-crawl server needs from the broker.
type Publisher interface {
	Publish(ctx context.Context, exchange, key string, msgs ...message.Encoded) error
}

// ResultPublisher is what the worker needs from the broker: a publish whose confirm it can wait
// for later, and a confirmed publish (to split a message of several jobs).
type ResultPublisher interface {
	Publisher
	PublishAsync(ctx context.Context, exchange, key string, msg message.Encoded) (wait func(context.Context) error, err error)
}

// Worker turns crawl jobs into fetch results: decode, fetch, publish the result, and only once
// the broker has confirmed the result, ack the job.
//
// A delivery holds one job or several (message.CrawlJobs); its jobs are fetched independently
// by Concurrency fetchers, and the delivery is settled once all of them have ended (bundle).
// Neither publishing nor waiting for confirms holds a fetch slot. A fetcher puts its encoded
// result in an outbox; a publishing goroutine takes results from it in bursts (the first one,
// then whatever else arrives within Linger) and publishes them back to back; a settling
// goroutine settles jobs as their results are confirmed. At most Concurrency results wait in the
// outbox and Concurrency wait for confirms.
type Worker struct {
	Fetcher     *Fetcher
	Pub         ResultPublisher
	Topology    pipeline.Topology
	Concurrency int
	ID          string
	Log         *slog.Logger
	// Linger is how long a finished result may wait for others to be published with it (zero:
	// each at once). The broker spends several times less CPU on messages that arrive back to
	// back than on the same messages spread out (docs/adr/0038-crawler-publishes-in-bursts.md).
	Linger time.Duration
	// ResultsPerMessage is the most fetch results one message carries (message.PackResults);
	// 0 or 1 publishes each result on its own, which processors older than such messages need.
	ResultsPerMessage int

	inFlight  atomic.Int64
	processed atomic.Int64
	splits    atomic.Int64
}

// InFlight is the number of jobs being fetched now (not counting those whose results wait to be
// published or confirmed).
func (w *Worker) InFlight() int64 { return w.inFlight.Load() }

// Processed is the number of jobs finished (their results confirmed) so far.
func (w *Worker) Processed() int64 { return w.processed.Load() }

// Splits is the number of messages of several jobs this worker republished one per message.
func (w *Worker) Splits() int64 { return w.splits.Load() }

// task is one job of a bundle, for a fetcher.
type task struct {
	b *bundle
	i int
}

// Serve works deliveries until the stream closes. Jobs already started finish under workCtx;
// when stop is closed, jobs not yet started are returned to the queue instead of being fetched.
func (w *Worker) Serve(workCtx context.Context, stop <-chan struct{}, deliveries pipeline.Deliveries) {
	outbox := make(chan outgoing, max(w.Concurrency, 1))
	confirms := make(chan confirmation, max(w.Concurrency, 1))
	settled := make(chan struct{})
	go func() {
		defer close(settled)
		for c := range confirms {
			w.settle(workCtx, c)
		}
	}()
	go func() {
		defer close(confirms)
		w.publish(workCtx, outbox, confirms)
	}()
	tasks := make(chan task)
	var fetchers sync.WaitGroup
	for range max(w.Concurrency, 1) {
		fetchers.Go(func() {
			for t := range tasks {
				select {
				case <-stop:
					t.b.end(workCtx, w, t.i, jobRequeue)
					continue
				default:
				}
				if o, _, ok := w.handle(workCtx, t); ok {
					outbox <- o
				}
			}
		})
	}
	// Paced deliveries stop starting jobs once stop is closed or the stream has closed (the
	// broker connection is gone: the delivery will go to another crawler).
	var pacers sync.WaitGroup
	streamDone := make(chan struct{})
	w.feed(workCtx, stop, deliveries, tasks, func(b *bundle, received time.Time, redelivered bool) {
		pacers.Go(func() { w.pace(workCtx, stop, streamDone, b, received, redelivered, outbox) })
	})
	close(streamDone)
	close(tasks)
	fetchers.Wait()
	pacers.Wait()
	close(outbox)
	<-settled // every job's result is confirmed or its delivery returned before return
}

// feed decodes deliveries into bundles and hands their jobs to the fetchers until the stream
// closes. Once stop is closed, a delivery's jobs not yet handed out are returned instead. A
// delivery of a paced host's slots goes to paced instead, whole.
func (w *Worker) feed(ctx context.Context, stop <-chan struct{}, deliveries pipeline.Deliveries, tasks chan<- task,
	paced func(b *bundle, received time.Time, redelivered bool)) {
	for d := range deliveries {
		received := time.Now()
		select {
		case <-stop:
			_ = d.Requeue()
			continue
		default:
		}
		jobs, err := message.DecodeJobs(d.Body, d.Type)
		if err != nil {
			w.Log.Error("poison crawl job dead-lettered", "err", err, "bytes", len(d.Body))
			metrics.Poison.WithLabelValues(message.TypeCrawlJob).Inc()
			_ = d.Reject(false)
			continue
		}
		if slices.ContainsFunc(jobs, message.CrawlJob.Paced) {
			// Not split when redelivered: its jobs must stay on one crawler, one after another.
			paced(newBundle(d, jobs), received, d.Redelivered)
			continue
		}
		if d.Redelivered && len(jobs) > 1 {
			// Delivered before and not settled: perhaps one of its jobs crashed a crawler. Each job
			// goes back on its own, so that only a job that keeps failing reaches the dead letters.
			w.split(ctx, d, jobs, "redelivered", len(jobs))
			continue
		}
		b := newBundle(d, jobs)
		for i := range jobs {
			select {
			case tasks <- task{b: b, i: i}:
			case <-stop:
				b.end(ctx, w, i, jobRequeue)
			}
		}
	}
}

// pace fetches the jobs of a delivery of a paced host's slots one after another, outside the
// fetch slots (the delivery holds a prefetch slot meanwhile): each no sooner than its DelayMS
// after the delivery was received, and each at least its IntervalMS after the previous request
// was written (paceMargin more), on this process's monotonic clock. One job at a time, so a page slower than the
// interval delays the next instead of overlapping it. A redelivered delivery (its crawler may
// have died just after a fetch) waits one interval more. Once stop or streamDone is closed, the
// jobs not started are returned.
func (w *Worker) pace(ctx context.Context, stop, streamDone <-chan struct{}, b *bundle, received time.Time, redelivered bool, outbox chan<- outgoing) {
	var last time.Time
	for i, job := range b.jobs {
		gap := time.Duration(job.IntervalMS)*time.Millisecond + paceMargin
		at := received.Add(time.Duration(job.DelayMS) * time.Millisecond)
		switch {
		case !last.IsZero():
			at = later(at, last.Add(gap))
		case redelivered:
			at = later(at, received.Add(gap))
		}
		if !sleepUntil(ctx, stop, streamDone, at) {
			for k := i; k < len(b.jobs); k++ {
				b.end(ctx, w, k, jobRequeue)
			}
			return
		}
		last = time.Now()
		o, sent, ok := w.handle(ctx, task{b: b, i: i})
		if !sent.IsZero() {
			last = sent // when the request went out, the moment closest to the server's
		}
		if ok {
			outbox <- o
		}
	}
}

// paceMargin is added to a paced host's interval between fetches of one delivery: the server
// reads a request a little after it is written, by a time that varies from request to request
// with the scheduling of both ends.
const paceMargin = 2 * time.Millisecond

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// sleepUntil waits until at; it returns false if stop or streamDone is closed, or ctx ends,
// first.
func sleepUntil(ctx context.Context, stop, streamDone <-chan struct{}, at time.Time) bool {
	t := time.NewTimer(max(time.Until(at), 0))
	defer t.Stop()
	select {
	case <-stop:
		return false
	case <-streamDone:
		return false
	case <-ctx.Done():
		return false
	default:
	}
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	case <-streamDone:
		return false
	case <-ctx.Done():
		return false
	}
}

// split republishes jobs one per message and then acks their delivery; if the publish fails the
// delivery goes back to the queue whole (pipeline.Split). A paced host's slots are republished
// together, in one message, so that they stay one after another on one crawler, except the last
// alone jobs (poison), which go one per message as any job would, to be retried and
// dead-lettered alone.
func (w *Worker) split(ctx context.Context, d pipeline.Delivery, jobs []message.CrawlJob, why string, alone int) {
	together := jobs[:len(jobs)-alone]
	if !slices.ContainsFunc(together, message.CrawlJob.Paced) {
		together, alone = nil, len(jobs)
	}
	msgs, err := message.JobMessages(together, len(together))
	if err == nil {
		var more []message.Encoded
		more, err = message.JobMessages(jobs[len(jobs)-alone:], 1)
		msgs = append(msgs, more...)
	}
	if err != nil {
		_ = d.Requeue()
		err = fmt.Errorf("%w: %w", pipeline.ErrNotSplit, err)
	} else {
		err = pipeline.Split(ctx, w.Pub, d, w.Topology.CrawlExchange(), pipeline.KeyJob, msgs)
	}
	if errors.Is(err, pipeline.ErrNotSplit) {
		w.Log.Warn("could not split a message of several crawl jobs; returned to queue", "err", err, "why", why, "jobs", len(jobs))
		return
	}
	w.Log.Info("message of several crawl jobs split into one message per job", "why", why, "jobs", len(jobs))
	w.splits.Add(1)
	metrics.Splits.WithLabelValues(message.TypeCrawlJobs).Inc()
	if err != nil {
		w.Log.Warn("ack of a split message failed; its jobs may be fetched twice", "err", err)
	}
}

// jobEnd is how one job of a bundle ended.
type jobEnd int

const (
	jobDone    jobEnd = iota // its result is confirmed
	jobRequeue               // to be fetched again later
	jobReject                // poison: to the dead letters
	jobExpired               // its lease ran out in the queue: nothing to fetch, settled as done
)

// acked reports whether a job that ended so is settled by acking its delivery.
func (e jobEnd) acked() bool { return e == jobDone || e == jobExpired }

// bundle is one delivery of the crawl queue and its jobs. The delivery is settled when the last
// job ends: acked if every result was confirmed; returned whole if no job was done (its jobs are
// fetched again, as a lone job's would be); a lone job is rejected as it asks. A bundle whose jobs ended
// differently is split: the jobs not done are republished one per message, where they are
// retried (or dead-lettered) on their own, and the delivery is acked.
type bundle struct {
	d    pipeline.Delivery
	jobs []message.CrawlJob

	mu   sync.Mutex
	left int
	ends []jobEnd
}

func newBundle(d pipeline.Delivery, jobs []message.CrawlJob) *bundle {
	return &bundle{d: d, jobs: jobs, left: len(jobs), ends: make([]jobEnd, len(jobs))}
}

// end records how job i ended and settles the delivery after the last one.
func (b *bundle) end(ctx context.Context, w *Worker, i int, e jobEnd) {
	if e == jobDone {
		w.processed.Add(1)
		metrics.JobsDone.Inc()
	}
	b.mu.Lock()
	b.ends[i] = e
	b.left--
	last := b.left == 0
	b.mu.Unlock()
	if !last {
		return
	}
	var done, rejected int
	for _, e := range b.ends {
		switch {
		case e.acked():
			done++
		case e == jobReject:
			rejected++
		}
	}
	var err error
	switch {
	case done == len(b.jobs):
		err = b.d.Done() // acked together with others when it can: docs/adr/0040-crawler-acks-jobs-together.md
	case len(b.jobs) == 1 && rejected == 1:
		err = b.d.Reject(false)
	case done == 0 && rejected == 0:
		err = b.d.Requeue()
	default:
		var rest, poison []message.CrawlJob
		for i, e := range b.ends {
			switch {
			case e == jobReject:
				poison = append(poison, b.jobs[i])
			case !e.acked():
				rest = append(rest, b.jobs[i])
			}
		}
		w.split(ctx, b.d, append(rest, poison...), "some jobs not done", len(poison))
		return
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		w.Log.Warn("settling a crawl job message failed; the broker will redeliver it", "err", err, "jobs", len(b.jobs))
	}
}

// outgoing is a job whose result is encoded and waits to be published.
type outgoing struct {
	msg message.Encoded
	job task
}

// confirmation is a message of results that was sent: its jobs end when it is confirmed.
type confirmation struct {
	wait func(context.Context) error
	jobs []task
}

// publish sends the outbox's results in bursts until it is closed: it takes one result, gathers
// what else arrives within Linger (up to Concurrency results), and publishes them back to back,
// packed into messages of up to ResultsPerMessage results.
func (w *Worker) publish(ctx context.Context, outbox <-chan outgoing, confirms chan<- confirmation) {
	burst := make([]outgoing, 0, max(w.Concurrency, 1))
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for first := range outbox {
		burst = append(burst[:0], first)
		if w.Linger > 0 {
			timer.Reset(w.Linger)
		gather:
			for len(burst) < cap(burst) {
				select {
				case o, ok := <-outbox:
					if !ok {
						break gather
					}
					burst = append(burst, o)
				case <-timer.C:
					break gather
				}
			}
			timer.Stop()
		}
		for _, group := range w.pack(burst) {
			msg, jobs := group[0].msg, make([]task, len(group))
			for i, o := range group {
				jobs[i] = o.job
			}
			if len(group) > 1 {
				parts := make([][]byte, len(group))
				for i, o := range group {
					parts[i] = o.msg.Body
				}
				msg = message.Encoded{ID: message.NewID(), Type: message.TypeFetchResults, Body: message.PackResults(parts)}
			}
			wait, err := w.Pub.PublishAsync(ctx, w.Topology.PagesExchange(), pipeline.KeyPage, msg)
			if err != nil {
				w.returnJobs(ctx, err, jobs)
				continue
			}
			confirms <- confirmation{wait: wait, jobs: jobs}
		}
	}
}

// pack splits a burst into the messages it is published as: pages' results, in order, up to
// ResultsPerMessage and message.ResultsMessageBytes a message; robots and sitemap results, and
// a result too big to share, each alone.
func (w *Worker) pack(burst []outgoing) [][]outgoing {
	per := min(max(w.ResultsPerMessage, 1), message.MaxResultsPerMessage)
	groups := make([][]outgoing, 0, len(burst))
	var cur []outgoing
	size := 0
	flush := func() {
		if len(cur) > 0 {
			groups = append(groups, cur)
			cur, size = nil, 0
		}
	}
	for _, o := range burst {
		if !message.IsPageKind(o.job.b.jobs[o.job.i].Kind) || per == 1 || len(o.msg.Body) > message.ResultsMessageBytes/2 {
			groups = append(groups, []outgoing{o})
			continue
		}
		if len(cur) == per || size+len(o.msg.Body) > message.ResultsMessageBytes {
			flush()
		}
		cur = append(cur, o)
		size += len(o.msg.Body)
	}
	flush()
	return groups
}

// serve works deliveries with concurrency goroutines until the stream closes. Once stop is
// closed, deliveries not yet started go back to the queue (nack with requeue) instead of being
// handled; handling already under way finishes.
func serve(concurrency int, stop <-chan struct{}, deliveries pipeline.Deliveries, handle, requeue func(pipeline.Delivery)) {
	var wg sync.WaitGroup
	for range max(concurrency, 1) {
		wg.Go(func() {
			for d := range deliveries {
				select {
				case <-stop:
					requeue(d)
					continue
				default:
				}
				handle(d)
			}
		})
	}
	wg.Wait()
}

// handle fetches one job and encodes its result. It returns the result to publish (otherwise
// the job has ended already) and when its request was written (zero if it was not).
func (w *Worker) handle(ctx context.Context, t task) (_ outgoing, sent time.Time, _ bool) {
	w.inFlight.Add(1)
	defer w.inFlight.Add(-1)
	job := t.b.jobs[t.i]
	if !job.LeaseUntil.IsZero() && time.Now().After(job.LeaseUntil) {
		// The URL's lease ran out while the job waited: the scheduler queues the URL again and
		// dispatches it anew, so fetching this copy would only fetch it twice.
		metrics.JobsExpired.Inc()
		w.Log.Debug("lease ran out before the fetch; job skipped", "url", job.URL, "lease_until", job.LeaseUntil)
		t.b.end(ctx, w, t.i, jobExpired)
		return outgoing{}, sent, false
	}
	res, sent := w.Fetcher.fetchJob(ctx, job, w.ID)
	metrics.ObserveFetch(res.Status, res.Error != "", res.ErrorClass, time.Duration(res.DurationMS)*time.Millisecond, res.Size)
	msgBody, err := message.EncodeFetchResult(res)
	if err != nil {
		w.Log.Error("encode fetch result", "err", err, "url", job.URL)
		metrics.Poison.WithLabelValues(message.TypeCrawlJob).Inc()
		t.b.end(ctx, w, t.i, jobReject)
		return outgoing{}, sent, false
	}
	w.Log.Debug("fetched", "url", job.URL, "status", res.Status, "err", res.Error, "duration_ms", res.DurationMS)
	return outgoing{msg: message.Encoded{ID: res.ID, Type: message.TypeFetchResult, Body: msgBody}, job: t}, sent, true
}

// settle ends a message's jobs once it is confirmed, or returns them.
func (w *Worker) settle(ctx context.Context, c confirmation) {
	if err := c.wait(ctx); err != nil {
		w.returnJobs(ctx, err, c.jobs)
		return
	}
	failpoint.Inject(failpoint.CrawlerAfterConfirm)
	for _, t := range c.jobs {
		t.b.end(ctx, w, t.i, jobDone)
	}
}

// returnJobs puts back jobs whose results were not confirmed: they are fetched again.
func (w *Worker) returnJobs(ctx context.Context, err error, jobs []task) {
	for _, t := range jobs {
		w.Log.Warn("fetch result not confirmed; job returned to queue", "err", err, "url", t.b.jobs[t.i].URL)
		t.b.end(ctx, w, t.i, jobRequeue)
	}
}
