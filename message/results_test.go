package message

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestPackResultsRoundTrip(t *testing.T) {
	t.Parallel()
	var parts [][]byte
	for _, url := range []string{"http://a/1", "http://a/2", "http://a/3"} {
		b, err := EncodeFetchResult(FetchResult{Envelope: NewEnvelope(TypeFetchResult), Kind: KindPage, URL: url, Text: "text of " + url})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, b)
	}
	parts = append(parts, []byte(`{"type":"fetch.result","v":1,"id":"json"}`)) // plain JSON parts pass too
	body := PackResults(parts)
	if !IsResults(body) || ContentType(body) != ContentTypeResults {
		t.Fatalf("packed body not recognised: %q", ContentType(body))
	}
	got, err := UnpackResults(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(parts) {
		t.Fatalf("%d parts back, want %d", len(got), len(parts))
	}
	for i := range parts {
		if !bytes.Equal(got[i], parts[i]) {
			t.Errorf("part %d changed", i)
		}
	}
	var fr FetchResult
	if err := Decode(got[1], TypeFetchResult, &fr); err != nil || fr.URL != "http://a/2" || fr.Text != "text of http://a/2" {
		t.Errorf("part 1 decodes to %+v, %v", fr, err)
	}
	// A part cannot grow into its neighbour.
	if got[0] = append(got[0], 'x'); !bytes.Equal(got[1], parts[1]) {
		t.Error("appending to a part overwrote the next one")
	}
	if !bytes.Contains(JSONPart(body), []byte("http://a/1")) {
		t.Errorf("JSONPart of several results = %q, want the first one's JSON", JSONPart(body))
	}
	if err := Decode(body, TypeFetchResult, &fr); !errors.Is(err, ErrPermanent) {
		t.Errorf("Decode of several results as one = %v, want ErrPermanent", err)
	}
}

func TestUnpackResultsRejectsBadBodies(t *testing.T) {
	t.Parallel()
	good := PackResults([][]byte{[]byte("one"), []byte("two")})
	head := func(n uint64) []byte { return binary.AppendUvarint(append([]byte(nil), resultsMagic...), n) }
	for name, body := range map[string][]byte{
		"not results":    []byte(`{"type":"fetch.result"}`),
		"no count":       append([]byte(nil), resultsMagic...),
		"zero results":   head(0),
		"too many":       head(MaxResultsPerMessage + 1),
		"truncated part": good[:len(good)-1],
		"part too long":  binary.AppendUvarint(head(1), 1<<40),
		"trailing bytes": append(append([]byte(nil), good...), 'x'),
		"missing part":   append(head(3), good[len(head(2)):]...),
	} {
		if _, err := UnpackResults(body); !errors.Is(err, ErrPermanent) {
			t.Errorf("%s: UnpackResults = %v, want ErrPermanent", name, err)
		}
	}
}

// DecodeFetchResults decodes a pages-queue body of one result or several in one call, and
// tells a body that cannot be decoded (no parts: poison) from a message of several with a bad
// part (its parts, to split); ResultMessages keeps each part's own id.
func TestDecodeFetchResults(t *testing.T) {
	t.Parallel()
	one, err := EncodeFetchResult(FetchResult{Envelope: NewEnvelope(TypeFetchResult), Kind: KindPage, URL: "http://a/1", Text: "t"})
	if err != nil {
		t.Fatal(err)
	}
	bad := []byte("not a result")
	frs, parts, err := DecodeFetchResults(one)
	if err != nil || parts != nil || len(frs) != 1 || frs[0].URL != "http://a/1" || frs[0].Text != "t" {
		t.Fatalf("one result: %+v, parts %d, err %v", frs, len(parts), err)
	}
	two := PackResults([][]byte{one, []byte(`{"type":"fetch.result","v":1,"id":"j","url":"http://a/2"}`)})
	frs, parts, err = DecodeFetchResults(two)
	if err != nil || len(parts) != 2 || len(frs) != 2 || frs[1].URL != "http://a/2" {
		t.Fatalf("two results: %+v, parts %d, err %v", frs, len(parts), err)
	}
	if _, parts, err = DecodeFetchResults(bad); !errors.Is(err, ErrPermanent) || parts != nil {
		t.Fatalf("bad body: parts %d, err %v; want no parts and ErrPermanent", len(parts), err)
	}
	if _, parts, err = DecodeFetchResults(PackResults([][]byte{one, bad})); !errors.Is(err, ErrPermanent) || len(parts) != 2 {
		t.Fatalf("bad part: parts %d, err %v; want both parts and ErrPermanent", len(parts), err)
	}
	msgs := ResultMessages([][]byte{one, bad})
	if msgs[0].ID != frs[0].ID || msgs[1].ID == "" || msgs[0].Type != TypeFetchResult || !bytes.Equal(msgs[1].Body, bad) {
		t.Fatalf("ResultMessages = %+v", msgs)
	}
}
