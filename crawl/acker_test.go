package crawl

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/trawlhq/trawl/pipeline"
)

// channelLog is an amqp.Acknowledger that keeps what would have been sent, and checks the rule
// the acker must keep: a multiple-ack never covers a delivery that was not finished.
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

func TestAckerBatchesInOrderAcks(t *testing.T) {
	t.Parallel()
	ch := newChannelLog(t)
	a := newAcker(100)
	jobs := make([]jobDelivery, 7)
	for i := range jobs {
		jobs[i] = a.job(pipeline.WrapDelivery(amqp.Delivery{Acknowledger: ch, DeliveryTag: uint64(i + 1)}))
	}
	do := func(i int, what string) {
		ch.finish(uint64(i + 1))
		var err error
		switch what {
		case "ack":
			err = jobs[i].ack()
		case "requeue":
			err = jobs[i].requeue()
		case "reject":
			err = jobs[i].reject()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	do(2, "ack")     // 3 waits for 1 and 2
	do(1, "requeue") // 2 goes back to the queue at once
	do(4, "ack")
	if want := []string{"nack 2"}; !slices.Equal(ch.sent, want) {
		t.Fatalf("sent %q, want %q", ch.sent, want)
	}
	do(0, "ack") // 1 done: 1..3 settle with one ack on 3
	do(3, "reject")
	do(6, "ack")
	do(5, "ack")
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

// A slow job at the lowest tag must not hold back more than maxWaiting finished ones.
func TestAckerSlowJobDoesNotHoldThePrefetchWindow(t *testing.T) {
	t.Parallel()
	ch := newChannelLog(t)
	a := newAcker(3)
	for tag := uint64(2); tag <= 5; tag++ { // tag 1 is a slow fetch
		ch.finish(tag)
		if err := a.job(pipeline.WrapDelivery(amqp.Delivery{Acknowledger: ch, DeliveryTag: tag})).ack(); err != nil {
			t.Fatal(err)
		}
	}
	for tag := uint64(2); tag <= 5; tag++ {
		if !ch.acked[tag] {
			t.Errorf("finished delivery %d still waits behind the slow one (sent %q)", tag, ch.sent)
		}
	}
	ch.finish(1)
	if err := a.job(pipeline.WrapDelivery(amqp.Delivery{Acknowledger: ch, DeliveryTag: 1})).ack(); err != nil {
		t.Fatal(err)
	}
	if !ch.acked[1] || ch.sent[len(ch.sent)-1] != "ack 1 true" {
		t.Fatalf("the slow delivery: acked %v, sent %q", ch.acked[1], ch.sent)
	}
}

// Many fetchers finishing at once in random order: every delivery is settled exactly as
// wanted and no ack covers an unfinished one (checked by channelLog).
func TestAckerConcurrent(t *testing.T) {
	t.Parallel()
	ch := newChannelLog(t)
	a := newAcker(16)
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
				j := a.job(pipeline.WrapDelivery(amqp.Delivery{Acknowledger: ch, DeliveryTag: tag}))
				ch.finish(tag)
				var err error
				if tag%97 == 0 {
					err = j.requeue()
				} else {
					err = j.ack()
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
