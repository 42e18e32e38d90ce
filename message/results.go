package message

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// Several fetch results travel in one message when a crawler finishes them together (a burst,
// see crawl.Worker): the broker's cost of a message hardly depends on its size, and a processor
// persists results in batches anyway (docs/adr/0043-several-jobs-and-results-per-message.md).
//
//	results = resultsMagic | uvarint(n) | n × (uvarint(len(part)) | part)
//
// Each part is one fetch result as a frame (or JSON), exactly as it would travel on its own, so
// a processor can republish any part as its own message. Like a frame, the body starts with a
// NUL byte and is told apart by its first bytes alone.
var resultsMagic = []byte{0, 'T', 'R', 'B'}

// Fetch results messages.
const (
	TypeFetchResults     = "fetch.results"
	ContentTypeResults   = "application/vnd.trawl.results"
	MaxResultsPerMessage = 64
	// ResultsMessageBytes is the size up to which a crawler packs results into one message; a
	// larger result travels alone.
	ResultsMessageBytes = 1 << 20
)

// IsResults reports whether body holds several fetch results (PackResults).
func IsResults(body []byte) bool { return bytes.HasPrefix(body, resultsMagic) }

// PackResults packs encoded fetch results into one message body.
func PackResults(parts [][]byte) []byte {
	n := len(resultsMagic) + binary.MaxVarintLen64
	for _, p := range parts {
		n += binary.MaxVarintLen64 + len(p)
	}
	body := append(make([]byte, 0, n), resultsMagic...)
	body = binary.AppendUvarint(body, uint64(len(parts)))
	for _, p := range parts {
		body = binary.AppendUvarint(body, uint64(len(p)))
		body = append(body, p...)
	}
	return body
}

// UnpackResults returns the parts of a body made by PackResults, each a slice of body. Every
// failure wraps ErrPermanent.
func UnpackResults(body []byte) ([][]byte, error) {
	if !IsResults(body) {
		return nil, fmt.Errorf("message: decode %s: %w: not a results message", TypeFetchResults, ErrPermanent)
	}
	if len(body) > MaxMessageBytes {
		return nil, fmt.Errorf("message: decode %s: %w: %d bytes, limit %d", TypeFetchResults, ErrPermanent, len(body), MaxMessageBytes)
	}
	rest := body[len(resultsMagic):]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n == 0 || n > MaxResultsPerMessage {
		return nil, fmt.Errorf("message: decode %s: %w: bad result count", TypeFetchResults, ErrPermanent)
	}
	rest = rest[k:]
	parts := make([][]byte, 0, n)
	for i := range n {
		part, after, ok := cutChunk(rest)
		if !ok {
			return nil, fmt.Errorf("message: decode %s: %w: result %d truncated", TypeFetchResults, ErrPermanent, i)
		}
		parts, rest = append(parts, part), after
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("message: decode %s: %w: %d bytes after the last result", TypeFetchResults, ErrPermanent, len(rest))
	}
	return parts, nil
}

// DecodeFetchResults decodes a message of the pages queue, which holds one fetch result (JSON
// or a frame) or several (PackResults), in one call. For a message of several, parts holds each
// result as it was encoded, so the caller can republish them one per message (ResultMessages);
// for a message of one it is nil. A message that cannot be decoded at all fails with nil parts;
// a message of several with a result that cannot be decoded fails with its parts. Every failure
// wraps ErrPermanent.
func DecodeFetchResults(body []byte) (results []FetchResult, parts [][]byte, err error) {
	if !IsResults(body) {
		var fr FetchResult
		if err := Decode(body, TypeFetchResult, &fr); err != nil {
			return nil, nil, err
		}
		return []FetchResult{fr}, nil, nil
	}
	parts, err = UnpackResults(body)
	if err != nil {
		return nil, nil, err
	}
	results = make([]FetchResult, len(parts))
	for i, part := range parts {
		if err := Decode(part, TypeFetchResult, &results[i]); err != nil {
			return results[:i], parts, fmt.Errorf("message: decode %s: result %d: %w", TypeFetchResults, i, err)
		}
	}
	return results, parts, nil
}

// ResultMessages turns the parts of a message of several results into one message each. Each
// keeps its own id where its envelope can be read, and gets a new one otherwise.
func ResultMessages(parts [][]byte) []Encoded {
	msgs := make([]Encoded, len(parts))
	for i, part := range parts {
		var env Envelope
		if json.Unmarshal(JSONPart(part), &env) != nil || env.ID == "" {
			env.ID = NewID()
		}
		msgs[i] = Encoded{ID: env.ID, Type: TypeFetchResult, Body: part}
	}
	return msgs
}
