package message

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeRejectsBadMessages(t *testing.T) {
	t.Parallel()
	good, _ := Encode(CrawlJob{Envelope: NewEnvelope(TypeCrawlJob), URL: "http://a/"})
	tests := []struct {
		name string
		body string
	}{
		{"not json", "{"},
		{"wrong type", `{"type":"fetch.result","v":1,"id":"x"}`},
		{"future version", `{"type":"crawl.job","v":2,"id":"x"}`},
		{"no id", `{"type":"crawl.job","v":1}`},
		{"wrong field type", `{"type":"crawl.job","v":1,"id":"x","url_id":"seven"}`},
		{"oversized", `{"type":"crawl.job","v":1,"id":"x","url":"` + strings.Repeat("a", MaxMessageBytes) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var j CrawlJob
			if err := Decode([]byte(tt.body), TypeCrawlJob, &j); !errors.Is(err, ErrPermanent) {
				t.Fatalf("Decode = %v, want ErrPermanent", err)
			}
		})
	}
	var j CrawlJob
	if err := Decode(good, TypeCrawlJob, &j); err != nil {
		t.Fatalf("Decode(good) = %v", err)
	}
	if diff := cmp.Diff("http://a/", j.URL); diff != "" {
		t.Fatalf("url (-want +got):\n%s", diff)
	}
}

func TestJobMessagesRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		jobs, per int
		sizes     []int
	}{
		{1, 8, []int{1}},
		{8, 8, []int{8}},
		{10, 8, []int{5, 5}},
		{17, 8, []int{5, 6, 6}},
		{3, 1, []int{1, 1, 1}},
		{3, 0, []int{1, 1, 1}},
		{130, 100, []int{43, 43, 44}}, // capped at MaxJobsPerMessage
	} {
		jobs := make([]CrawlJob, tt.jobs)
		for i := range jobs {
			jobs[i] = CrawlJob{Envelope: NewEnvelope(TypeCrawlJob), Kind: KindPage, URLID: int64(i), URL: "http://a/" + string(rune('a'+i%26))}
		}
		msgs, err := JobMessages(jobs, tt.per)
		if err != nil {
			t.Fatal(err)
		}
		var sizes []int
		var back []CrawlJob
		for _, m := range msgs {
			got, err := DecodeJobs(m.Body, m.Type)
			if err != nil {
				t.Fatalf("DecodeJobs: %v", err)
			}
			if len(got) > MaxJobsPerMessage {
				t.Fatalf("%d jobs in one message", len(got))
			}
			if len(got) == 1 && m.Type != TypeCrawlJob || len(got) > 1 && m.Type != TypeCrawlJobs {
				t.Errorf("a message of %d jobs has type %q", len(got), m.Type)
			}
			sizes = append(sizes, len(got))
			back = append(back, got...)
		}
		if diff := cmp.Diff(tt.sizes, sizes); diff != "" {
			t.Errorf("%d jobs at %d per message: sizes (-want +got):\n%s", tt.jobs, tt.per, diff)
		}
		if diff := cmp.Diff(jobs, back); diff != "" {
			t.Errorf("%d jobs at %d per message: jobs changed (-want +got):\n%s", tt.jobs, tt.per, diff)
		}
	}
}

func TestDecodeJobsRejectsBadMessages(t *testing.T) {
	t.Parallel()
	job := func() CrawlJob { return CrawlJob{Envelope: NewEnvelope(TypeCrawlJob), URL: "http://a/"} }
	wrongInner := job()
	wrongInner.Type = TypeFetchResult
	noID := job()
	noID.ID = ""
	tooMany := make([]CrawlJob, MaxJobsPerMessage+1)
	for i := range tooMany {
		tooMany[i] = job()
	}
	for name, b := range map[string]CrawlJobs{
		"no jobs":       {Envelope: NewEnvelope(TypeCrawlJobs)},
		"too many jobs": {Envelope: NewEnvelope(TypeCrawlJobs), Jobs: tooMany},
		"inner type":    {Envelope: NewEnvelope(TypeCrawlJobs), Jobs: []CrawlJob{job(), wrongInner}},
		"inner id":      {Envelope: NewEnvelope(TypeCrawlJobs), Jobs: []CrawlJob{noID, job()}},
		"outer type":    {Envelope: NewEnvelope(TypeCrawlJob), Jobs: []CrawlJob{job(), job()}},
		"outer version": {Envelope: Envelope{Type: TypeCrawlJobs, V: Version + 1, ID: "x"}, Jobs: []CrawlJob{job(), job()}},
	} {
		body, err := Encode(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeJobs(body, TypeCrawlJobs); !errors.Is(err, ErrPermanent) {
			t.Errorf("%s: DecodeJobs = %v, want ErrPermanent", name, err)
		}
	}
	// A bundle sent with a single job's type property is refused too, not half read.
	body, _ := Encode(CrawlJobs{Envelope: NewEnvelope(TypeCrawlJobs), Jobs: []CrawlJob{job(), job()}})
	if _, err := DecodeJobs(body, TypeCrawlJob); !errors.Is(err, ErrPermanent) {
		t.Errorf("bundle as a single job: DecodeJobs = %v, want ErrPermanent", err)
	}
}
