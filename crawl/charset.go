package crawl

import (
	"bytes"
	"unicode/utf8"

	"github.com/saintfish/chardet"
	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
)

// minDetectConfidence is the chardet confidence (1-100) below which its guess is ignored.
const minDetectConfidence = 30

// toUTF8 converts an HTML body to UTF-8 and names the encoding it was read as. The
// encoding is chosen as browsers do (byte order mark, then the Content-Type charset, then a
// <meta> charset in the first 1024 bytes), with two corrections for labels that are wrong,
// which are common on real sites:
//
//   - a body labelled with an ASCII-compatible legacy encoding (ISO-8859-1, windows-1252, ...)
//     that is valid UTF-8 and contains non-ASCII bytes is read as UTF-8: legacy text is
//     almost never valid UTF-8 by accident, and decoding UTF-8 as Latin-1 makes mojibake;
//   - a body labelled UTF-8 (or unlabelled) that is not valid UTF-8 and has not a single
//     valid multi-byte UTF-8 sequence is read in the encoding its <meta> names, else the one
//     statistical detection finds, else windows-1252. (With some valid multi-byte sequences
//     it is taken for damaged UTF-8.)
//
// A byte order mark is removed. It never fails: what cannot be decoded becomes U+FFFD later,
// in extraction.
func toUTF8(body []byte, contentType string) ([]byte, string) {
	out, name := decodeBody(body, contentType)
	return bytes.TrimPrefix(out, []byte("\uFEFF")), name
}

func decodeBody(body []byte, contentType string) ([]byte, string) {
	if len(body) == 0 {
		return body, "utf-8"
	}
	enc, name, _ := charset.DetermineEncoding(body, contentType)
	valid := utf8.Valid(body)
	switch {
	case name == "utf-8" && valid:
		return body, name
	case name == "utf-8" && hasValidMultibyte(body):
		return body, name // UTF-8 with some damage: the damage becomes U+FFFD
	case name == "utf-8" || name == "replacement":
		enc, name = sniffEncoding(body, valid)
	case valid && asciiCompatible(name) && hasNonASCII(body):
		return body, "utf-8"
	}
	if name == "utf-8" {
		return body, name
	}
	out, err := enc.NewDecoder().Bytes(body)
	if err != nil {
		return body, "utf-8"
	}
	return out, name
}

// sniffEncoding guesses the encoding of a body whose label is unusable: the <meta> charset if
// any, else UTF-8 if valid, else chardet's guess, else windows-1252.
func sniffEncoding(body []byte, valid bool) (encoding.Encoding, string) {
	if e, name, _ := charset.DetermineEncoding(body, ""); name != "utf-8" && name != "replacement" && !(name == "windows-1252" && !hasMeta(body)) {
		return e, name
	}
	if valid {
		return encoding.Nop, "utf-8"
	}
	sample := body
	if len(sample) > 64<<10 {
		sample = sample[:64<<10]
	}
	if r, err := chardet.NewTextDetector().DetectBest(sample); err == nil && r.Confidence >= minDetectConfidence {
		if e, err := htmlindex.Get(r.Charset); err == nil {
			if name, err := htmlindex.Name(e); err == nil && name != "utf-8" && name != "replacement" {
				return e, name
			}
		}
	}
	e, _ := htmlindex.Get("windows-1252")
	return e, "windows-1252"
}

// hasMeta reports whether the start of body mentions a charset, so that a windows-1252 answer
// from charset.DetermineEncoding is a declaration rather than its default.
func hasMeta(body []byte) bool {
	if len(body) > 1024 {
		body = body[:1024]
	}
	return bytes.Contains(bytes.ToLower(body), []byte("charset"))
}

// asciiCompatible reports whether the WHATWG encoding name encodes ASCII as ASCII, so that a
// body in it can be tested for being UTF-8 instead.
func asciiCompatible(name string) bool {
	switch name {
	case "utf-16be", "utf-16le", "iso-2022-jp", "replacement":
		return false
	}
	return true
}

func hasNonASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// hasValidMultibyte reports whether b contains at least one valid multi-byte UTF-8 sequence.
func hasValidMultibyte(b []byte) bool {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || size > 1 {
			return true
		}
		i++
	}
	return false
}
