package crawl

import (
	"sync"

	"github.com/trawlhq/trawl/pipeline"
)

// acker settles one channel's crawl jobs with as few acks as it safely can. Jobs finish out of
// order (32 fetches at once), but a multiple-ack on tag T settles every unsettled delivery up to
// T, so it may only be sent once every earlier delivery is settled or also wants its ack. The
// acker tracks the channel's delivery tags (1, 2, 3, … on a channel) from the lowest one not yet
// settled: when the jobs below a tag are all done it acks them with one multiple-ack; a job
// returned to the queue or rejected is settled at once by its caller and only recorded here.
// While a slow fetch holds the lowest tag, finished jobs wait for their ack, but never more than
// maxWaiting: past that they are acked one by one, so a slow page cannot hold back the
// consumer's prefetch window. The tags settled behind a slow job stay recorded until it ends,
// which the fetch timeout bounds (at 2,000 jobs/s and 30 s, 60,000 small entries).
type acker struct {
	ack        pipeline.Settler // the channel's, from its first job
	maxWaiting int

	mu      sync.Mutex
	next    uint64          // lowest tag not known to be settled or waiting
	pending map[uint64]bool // tags ≥ next: true waits for an ack, false is settled
	waiting int             // true entries in pending
}

func newAcker(maxWaiting int) *acker {
	return &acker{maxWaiting: max(maxWaiting, 1), next: 1, pending: map[uint64]bool{}}
}

// job wraps one delivery of the acker's channel.
func (a *acker) job(d pipeline.Delivery) jobDelivery {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ack == (pipeline.Settler{}) {
		a.ack = d.Settler()
	}
	return jobDelivery{d: d, a: a}
}

// jobDelivery is a crawl job's delivery, settled through its channel's acker.
type jobDelivery struct {
	d pipeline.Delivery
	a *acker
}

// ack settles the job as done (possibly later, together with others).
func (j jobDelivery) ack() error { return j.a.done(j.d.DeliveryTag) }

// requeue returns the job to the queue now.
func (j jobDelivery) requeue() error {
	err := j.d.Requeue()
	if serr := j.a.settled(j.d.DeliveryTag); err == nil {
		err = serr
	}
	return err
}

// reject dead-letters the job now.
func (j jobDelivery) reject() error {
	err := j.d.Reject(false)
	if serr := j.a.settled(j.d.DeliveryTag); err == nil {
		err = serr
	}
	return err
}

// done records that the job with tag is finished and wants its ack, and sends what acks it
// can. An error means the channel is gone: the broker requeues the job on its own.
func (a *acker) done(tag uint64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pending[tag] = true
	a.waiting++
	return a.flush()
}

// settled records that the job with tag was returned to the queue or rejected by its caller.
func (a *acker) settled(tag uint64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pending[tag] = false
	return a.flush()
}

func (a *acker) flush() error {
	var last uint64
	for {
		wants, ok := a.pending[a.next]
		if !ok {
			break
		}
		if wants {
			last = a.next
			a.waiting--
		}
		delete(a.pending, a.next)
		a.next++
	}
	if last != 0 {
		if err := a.ack.Ack(last, true); err != nil {
			return err
		}
	}
	if a.waiting <= a.maxWaiting {
		return nil
	}
	// A slow job holds the lowest tag: ack the finished ones on their own.
	var err error
	for tag, wants := range a.pending {
		if wants {
			if e := a.ack.Ack(tag, false); e != nil && err == nil {
				err = e
			}
			a.pending[tag] = false
			a.waiting--
		}
	}
	return err
}
