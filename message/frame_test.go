package message

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/s2"
)

func TestFetchResultFrameRoundTrip(t *testing.T) {
	t.Parallel()
	for _, text := range []string{
		"",
		"short",
		benchFetchResult().Text,
		"quotes \" and \\ and NUL \x00 and invalid \xff UTF-8 travel as they are",
		strings.Repeat("x", 1<<20),
	} {
		want := benchFetchResult()
		want.Text = text
		body, err := EncodeFetchResult(want)
		if err != nil {
			t.Fatal(err)
		}
		if ContentType(body) != ContentTypeFrame {
			t.Fatalf("ContentType = %q, want the frame's", ContentType(body))
		}
		var got FetchResult
		if err := Decode(body, TypeFetchResult, &got); err != nil {
			t.Fatalf("Decode(%d bytes of text) = %v", len(text), err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
		// The description of a frame is its JSON, without the text.
		var meta map[string]any
		if err := json.Unmarshal(JSONPart(body), &meta); err != nil || meta["url"] != want.URL || meta["text"] != nil {
			t.Fatalf("JSONPart = %s (%v), want the JSON without text", JSONPart(body), err)
		}
	}
}

// TestFetchResultFrameIsSmaller pins the reason frames exist: a typical page's result is
// much smaller on the broker than its JSON.
func TestFetchResultFrameIsSmaller(t *testing.T) {
	t.Parallel()
	fr := benchFetchResult()
	framed, _ := EncodeFetchResult(fr)
	plain, _ := Encode(fr)
	if len(framed)*2 > len(plain) {
		t.Fatalf("frame %d bytes, JSON %d: want at most half", len(framed), len(plain))
	}
}

// TestDecodeAcceptsPlainJSONResults keeps fetch results from older crawlers and requeued dead
// letters decodable.
func TestDecodeAcceptsPlainJSONResults(t *testing.T) {
	t.Parallel()
	want := benchFetchResult()
	body, err := Encode(want)
	if err != nil {
		t.Fatal(err)
	}
	if ContentType(body) != ContentTypeJSON || !bytes.Equal(JSONPart(body), body) {
		t.Fatal("plain JSON is not recognised as JSON")
	}
	var got FetchResult
	if err := Decode(body, TypeFetchResult, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

func TestDecodeRejectsBadFrames(t *testing.T) {
	t.Parallel()
	good, _ := EncodeFetchResult(benchFetchResult())
	meta, _, _ := splitFrame(good)
	frame := func(meta, block []byte) []byte {
		b := append(bytes.Clone(frameMagic), binary.AppendUvarint(nil, uint64(len(meta)))...)
		return append(append(b, meta...), block...)
	}
	// A small block that claims to expand beyond the message limit: a decompression bomb.
	bomb := binary.AppendUvarint(nil, MaxMessageBytes+1)
	// A block that really expands 10,000-fold within the limit decodes.
	big := s2.Encode(nil, bytes.Repeat([]byte{'a'}, 10<<20))
	tests := []struct {
		name string
		body []byte
		typ  string
		ok   bool
	}{
		{"magic only", frameMagic, TypeFetchResult, false},
		{"length beyond body", frame(meta, nil)[:len(frameMagic)+10], TypeFetchResult, false},
		{"huge length", append(bytes.Clone(frameMagic), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), TypeFetchResult, false},
		{"bad json", frame([]byte(`{"type":`), nil), TypeFetchResult, false},
		{"wrong type", frame([]byte(`{"type":"crawl.job","v":1,"id":"x"}`), nil), TypeFetchResult, false},
		{"corrupt block", frame(meta, []byte{20, 1, 2, 3}), TypeFetchResult, false},
		{"bomb", frame(meta, bomb), TypeFetchResult, false},
		{"a job as a frame", frame([]byte(`{"type":"crawl.job","v":1,"id":"x"}`), nil), TypeCrawlJob, false},
		{"no text", frame(meta, nil), TypeFetchResult, true},
		{"10 MiB of text", frame(meta, big), TypeFetchResult, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var err error
			if tt.typ == TypeCrawlJob {
				err = Decode(tt.body, tt.typ, &CrawlJob{})
			} else {
				err = Decode(tt.body, tt.typ, &FetchResult{})
			}
			if tt.ok && err != nil {
				t.Fatalf("Decode = %v, want success", err)
			}
			if !tt.ok && !errors.Is(err, ErrPermanent) {
				t.Fatalf("Decode = %v, want ErrPermanent", err)
			}
		})
	}
	if JSONPart(frameMagic) != nil {
		t.Fatal("JSONPart of a broken frame is not nil")
	}
}
