package pipeline

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

func TestRedact(t *testing.T) {
	t.Parallel()
	if got := redact("amqp://user:secret@host:5672/vh"); got != "amqp://user@host:5672/vh" {
		t.Fatalf("redact = %q", got)
	}
}
