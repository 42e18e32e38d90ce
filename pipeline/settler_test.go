package pipeline_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/trawlhq/trawl/pipeline"
)

// channelLog is an amqp.Acknowledger that keeps what would have been sent, and checks the rule
// the settler must keep: a multiple-ack never covers a delivery that was not finished.
type channelLog struct {
	mu       sync.Mutex
	sent     []string
	acked    map[uint64]bool // settled at the broker by an ack
	returned map[uint64]bool // settled at the broker by a nack or reject
	finished map[uint64]bool // the worker is done with it (ack wanted, or nacked/rejected)
	t        *testing.T
}

func newChannelLog(t *testing.T) *channelLog {
	return &channelLog{acked: map[uint64]bool{}, returned: map[uint64]bool{}, finished: map[uint64]bool{}, t: t}
}

func (c *channelLog) finish(tag uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finished[tag] = true
}

func (c *channelLog) Ack(tag uint64, multiple bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, fmt.Sprintf("ack %d %v", tag, multiple))
	from := tag
	if multiple {
		from = 1
	}
	for t := from; t <= tag; t++ {
		if multiple && (c.acked[t] || c.returned[t]) {
			continue // a multiple-ack covers only unsettled deliveries
		}
		if c.returned[t] {
			c.t.Errorf("delivery %d acked after it was returned", t)
		}
		if !c.finished[t] {
			c.t.Errorf("ack(%d, multiple=%v) covers delivery %d, which is not finished", tag, multiple, t)
		}
		if !multiple && c.acked[t] {
			c.t.Errorf("delivery %d acked twice", t)
		}
		c.acked[t] = true
	}
	return nil
}

func (c *channelLog) Nack(tag uint64, multiple, requeue bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, fmt.Sprintf("nack %d", tag))
	c.returned[tag] = true
	return nil
}

func (c *channelLog) Reject(tag uint64, requeue bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, fmt.Sprintf("reject %d", tag))
	c.returned[tag] = true
	return nil
}

// Deliveries done out of order are acked together once every earlier one is settled; requeued
// and rejected ones are settled at once.
func TestSettlerBatchesInOrderAcks(t *testing.T) {
	t.Parallel()
	ch := newChannelLog(t)
	s := pipeline.NewSettler(ch, 100)
	jobs := make([]pipeline.Delivery, 7)
	for i := range jobs {
		jobs[i] = s.Wrap(amqp.Delivery{Acknowledger: ch, DeliveryTag: uint64(i + 1)})
	}
	do := func(i int, what string) {
		ch.finish(uint64(i + 1))
		var err error
		switch what {
		case "done":
			err = jobs[i].Done()
		case "requeue":
			err = jobs[i].Requeue()
		case "reject":
			err = jobs[i].Reject(false)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	do(2, "done")    // 3 waits for 1 and 2
	do(1, "requeue") // 2 goes back to the queue at once
	do(4, "done")
	if want := []string{"nack 2"}; !slices.Equal(ch.sent, want) {
		t.Fatalf("sent %q, want %q", ch.sent, want)
	}
	do(0, "done") // 1 done: 1..3 settle with one ack on 3
	do(3, "reject")
	do(6, "done")
	do(5, "done")
	want := []string{"nack 2", "ack 3 true", "reject 4", "ack 5 true", "ack 7 true"}
	if !slices.Equal(ch.sent, want) {
		t.Fatalf("sent %q, want %q", ch.sent, want)
	}
	for tag := uint64(1); tag <= 7; tag++ {
		if want := tag != 2 && tag != 4; ch.acked[tag] != want {
			t.Errorf("delivery %d acked = %v, want %v", tag, ch.acked[tag], want)
		}
	}
}

// A slow delivery at the lowest tag must not hold back more than maxWaiting done ones.
func TestSettlerSlowDeliveryDoesNotHoldThePrefetchWindow(t *testing.T) {
	t.Parallel()
	ch := newChannelLog(t)
	s := pipeline.NewSettler(ch, 3)
	for tag := uint64(2); tag <= 5; tag++ { // tag 1 is a slow fetch
		ch.finish(tag)
		if err := s.Wrap(amqp.Delivery{Acknowledger: ch, DeliveryTag: tag}).Done(); err != nil {
			t.Fatal(err)
		}
	}
	for tag := uint64(2); tag <= 5; tag++ {
		if !ch.acked[tag] {
			t.Errorf("finished delivery %d still waits behind the slow one (sent %q)", tag, ch.sent)
		}
	}
	ch.finish(1)
	if err := s.Wrap(amqp.Delivery{Acknowledger: ch, DeliveryTag: 1}).Done(); err != nil {
		t.Fatal(err)
	}
	if !ch.acked[1] || ch.sent[len(ch.sent)-1] != "ack 1 true" {
		t.Fatalf("the slow delivery: acked %v, sent %q", ch.acked[1], ch.sent)
	}
}

// Many workers finishing at once in random order: every delivery is settled exactly as
// wanted and no ack covers an unfinished one (checked by channelLog).
func TestSettlerConcurrent(t *testing.T) {
	t.Parallel()
	ch := newChannelLog(t)
	s := pipeline.NewSettler(ch, 16)
	const n = 2000
	tags := make(chan uint64, n)
	for tag := uint64(1); tag <= n; tag++ {
		tags <- tag
	}
	close(tags)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for tag := range tags {
				j := s.Wrap(amqp.Delivery{Acknowledger: ch, DeliveryTag: tag})
				ch.finish(tag)
				var err error
				if tag%97 == 0 {
					err = j.Requeue()
				} else {
					err = j.Done()
				}
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for tag := uint64(1); tag <= n; tag++ {
		if want := tag%97 != 0; ch.acked[tag] != want {
			t.Errorf("delivery %d acked = %v, want %v", tag, ch.acked[tag], want)
		}
	}
}
