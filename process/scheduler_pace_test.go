package process

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/trawlhq/trawl/message"
)

// A dispatch's paced jobs travel in one message per host, in slot order, so that one crawler
// fetches them one after another; the others are packed as before.
func TestJobMessagesKeepAHostsSlotsTogether(t *testing.T) {
	t.Parallel()
	job := func(u string, interval int, delay int64) message.CrawlJob {
		return message.CrawlJob{Envelope: message.NewEnvelope(message.TypeCrawlJob), Kind: message.KindPage, URL: u,
			IntervalMS: interval, DelayMS: delay}
	}
	jobs := []message.CrawlJob{
		job("http://a.test/1", 100, 0), job("http://free.test/1", 0, 0), job("http://b.test:8080/1", 500, 40),
		job("http://a.test/2", 100, 100), job("http://free.test/2", 0, 0), job("http://a.test/3", 100, 200),
		job("http://free.test/3", 0, 0), job("http://b.test:8080/2", 500, 540), job("http://free.test/4", 0, 0),
	}
	msgs, err := jobMessages(jobs, 2)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]string
	for _, m := range msgs {
		js, err := message.DecodeJobs(m.Body, m.Type)
		if err != nil {
			t.Fatal(err)
		}
		var us []string
		for _, j := range js {
			us = append(us, j.URL)
		}
		got = append(got, us)
	}
	want := [][]string{
		{"http://a.test/1", "http://a.test/2", "http://a.test/3"},
		{"http://b.test:8080/1", "http://b.test:8080/2"},
		{"http://free.test/1", "http://free.test/2"},
		{"http://free.test/3", "http://free.test/4"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}
