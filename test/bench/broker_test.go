package bench

import (
	"fmt"
	"testing"
	"time"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/test/testenv"
)

// BenchmarkBrokerArrival measures what one message costs the broker (CPU of every beam.smp on
// the machine, per message) when messages arrive at a crawl-like rate of 1,500/s into a quorum
// queue with confirms, and a consumer takes and acks them as they come: spread out one by one,
// or in bursts (what the crawler's TRAWL_CRAWLER_PUBLISH_LINGER does), with an ack per message or
// one multiple-ack per burst (what the processor does per batch). On this machine the broker
// spends several times less per message in bursts: the cost follows wake-ups, not bytes.
//
//	go test -run '^$' -bench BrokerArrival -benchtime 3000x ./bench/
func BenchmarkBrokerArrival(b *testing.B) {
	for _, size := range []int{300, 3500} {
		for _, burst := range []int{1, 8, 32} {
			for _, multiple := range []bool{false, true} {
				b.Run(fmt.Sprintf("bytes=%d/burst=%d/multiple-ack=%v", size, burst, multiple), func(b *testing.B) {
					brokerArrival(b, size, burst, multiple, 1500)
				})
			}
		}
	}
}

func brokerArrival(b *testing.B, size, burst int, multiple bool, rate int) {
	topo, raw := testenv.Broker(b)
	pub := newPublisher(b, "bench-arrival")
	ch, err := raw.Channel()
	if err != nil {
		b.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Qos(3*burst+64, 0, false); err != nil {
		b.Fatal(err)
	}
	deliveries, err := ch.Consume(topo.PagesQueue(), "", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	consumed := make(chan error, 1)
	go func() {
		for i := range b.N {
			d, ok := <-deliveries
			if !ok {
				consumed <- fmt.Errorf("consumer closed after %d", i)
				return
			}
			if !multiple {
				if err := d.Ack(false); err != nil {
					consumed <- err
					return
				}
			} else if i%burst == burst-1 || i == b.N-1 {
				if err := d.Ack(true); err != nil {
					consumed <- err
					return
				}
			}
		}
		consumed <- nil
	}()
	broker := startGroup("beam.smp")
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i += burst {
		if wait := time.Duration(i) * time.Second / time.Duration(rate); time.Since(start) < wait {
			time.Sleep(wait - time.Since(start))
		}
		msgs := make([]message.Encoded, min(burst, b.N-i))
		for j := range msgs {
			msgs[j] = message.Encoded{ID: message.NewID(), Type: "bench", Body: body}
		}
		if err := pub.Publish(b.Context(), topo.PagesExchange(), pipeline.KeyPage, msgs...); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-consumed; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if cpu, ok := broker.delta(); ok {
		b.ReportMetric(cpu/float64(b.N)*1e6, "broker-µs/msg")
	}
}
