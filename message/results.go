package message

import (
	"bytes"
	"encoding/binary"
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
