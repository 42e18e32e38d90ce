package message

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"
	"unsafe"

	"github.com/klauspost/compress/s2"
)

// A fetch result travels as a frame rather than as plain JSON: the page text, which is most of
// the message, is carried S2-compressed next to the JSON of everything else. The broker then
// stores and moves about half the bytes, the crawler does not JSON-escape the text, and the
// processor does not JSON-scan it twice (validate, then decode):
// docs/adr/0036-fetch-results-as-frames.md.
//
//	frame = frameMagic | uvarint(len(meta)) | meta | block
//
// meta is the message's JSON with the text left out and block is the text as one S2 block
// (empty when there is no text). A frame never starts like JSON (its first byte is NUL), so
// Decode tells the two apart by the body alone, and plain JSON fetch results, from older
// crawlers or requeued dead letters, still decode.
var frameMagic = []byte{0, 'T', 'R', 'F'}

// Content types of message bodies (AMQP content_type).
const (
	ContentTypeJSON  = "application/json"
	ContentTypeFrame = "application/vnd.trawl.frame"
)

// ContentType names the format of an encoded body.
func ContentType(body []byte) string {
	if isFrame(body) {
		return ContentTypeFrame
	}
	if IsResults(body) {
		return ContentTypeResults
	}
	return ContentTypeJSON
}

func isFrame(body []byte) bool { return bytes.HasPrefix(body, frameMagic) }

// EncodeFetchResult encodes a fetch result as a frame (see above).
func EncodeFetchResult(fr FetchResult) ([]byte, error) {
	text := fr.Text
	fr.Text = ""
	meta, err := json.Marshal(fr)
	if err != nil {
		return nil, fmt.Errorf("message: encode: %w", err)
	}
	scratch := framePool.Get().(*[]byte)
	defer framePool.Put(scratch)
	need := len(frameMagic) + binary.MaxVarintLen64 + len(meta) + s2.MaxEncodedLen(len(text))
	if cap(*scratch) < need {
		*scratch = make([]byte, 0, need)
	}
	body := append((*scratch)[:0], frameMagic...)
	body = binary.AppendUvarint(body, uint64(len(meta)))
	body = append(body, meta...)
	if text != "" {
		n := len(body)
		// s2 only reads its source: the text need not be copied into a []byte first.
		src := unsafe.Slice(unsafe.StringData(text), len(text))
		body = body[:n+len(s2.Encode(body[n:need], src))]
	}
	*scratch = body
	return bytes.Clone(body), nil // the message keeps only what it needs
}

// framePool holds encoding buffers: a frame is assembled in one of MaxEncodedLen's worst-case
// size, then copied out at its real size, which is a fraction of that.
var framePool = sync.Pool{New: func() any { return new([]byte) }}

// splitFrame returns a frame's JSON and its text block.
func splitFrame(body []byte) (meta, block []byte, err error) {
	meta, block, ok := cutChunk(body[len(frameMagic):])
	if !ok {
		return nil, nil, fmt.Errorf("%w: truncated frame header", ErrPermanent)
	}
	return meta, block, nil
}

// cutChunk splits b into the chunk at its start, written as uvarint(len) | bytes, and what
// follows. The chunk's capacity ends with it, so appending to it never touches the rest. It
// reports false when b is too short for the chunk it announces.
func cutChunk(b []byte) (chunk, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	b = b[k:]
	return b[:n:n], b[n:], true
}

// frameText decodes a frame's text block, refusing one that would expand beyond
// MaxMessageBytes (a small poison message must not allocate gigabytes).
func frameText(block []byte) (string, error) {
	if len(block) == 0 {
		return "", nil
	}
	n, err := s2.DecodedLen(block)
	if err != nil {
		return "", fmt.Errorf("%w: text block: %w", ErrPermanent, err)
	}
	if n > MaxMessageBytes {
		return "", fmt.Errorf("%w: text block expands to %d bytes, limit %d", ErrPermanent, n, MaxMessageBytes)
	}
	text, err := s2.Decode(make([]byte, n), block)
	if err != nil {
		return "", fmt.Errorf("%w: text block: %w", ErrPermanent, err)
	}
	if len(text) == 0 {
		return "", nil
	}
	// text is a new buffer that nothing else references or changes: it becomes the string
	// without a copy.
	return unsafe.String(&text[0], len(text)), nil
}

// JSONPart is the JSON of a body: the body itself, or a frame's metadata (everything but the
// text), or for several results the first one's. Tools that only describe a message, like the
// dead-letter store, read this.
func JSONPart(body []byte) []byte {
	if IsResults(body) {
		parts, err := UnpackResults(body)
		if err != nil {
			return nil
		}
		body = parts[0]
	}
	if !isFrame(body) {
		return body
	}
	meta, _, err := splitFrame(body)
	if err != nil {
		return nil
	}
	return meta
}

// textHolder is a message whose text may travel in a frame's block.
type textHolder interface{ frameText() *string }

func (fr *FetchResult) frameText() *string { return &fr.Text }
