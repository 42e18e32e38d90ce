// Package sanitize makes untrusted text safe to store: valid UTF-8 without
// NUL bytes or other C0 control characters.
//
// Crawled content is hostile. Postgres rejects NUL bytes and invalid UTF-8 in
// text columns, and stray control characters corrupt logs and terminals, so
// every string that came from the network passes through [Text] before it is
// stored or shown.
package sanitize

import (
	"strings"
	"unicode/utf8"
)

// replacement is what an invalid UTF-8 sequence becomes, as in
// [strings.ToValidUTF8].
const replacement = "\uFFFD"

// Text returns s with every run of invalid UTF-8 bytes replaced by a single
// U+FFFD (like [strings.ToValidUTF8]) and with NUL and the other C0 control
// characters (U+0000 to U+001F) removed, except tab, newline and carriage
// return. An s that is already clean is returned unchanged, without
// allocating. Text is idempotent.
func Text(s string) string {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if dropped(c) {
				return clean(s, i)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return clean(s, i)
		}
		i += size
	}
	return s
}

// dropped reports whether the ASCII byte c is a control character that Text
// removes.
func dropped(c byte) bool {
	return c < 0x20 && c != '\t' && c != '\n' && c != '\r'
}

// clean is the slow path of Text: s[:i] is known to be clean.
func clean(s string, i int) string {
	var b strings.Builder
	b.Grow(len(s) + len(replacement))
	b.WriteString(s[:i])
	invalid := false // whether the last byte examined was invalid UTF-8
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			invalid = false
			if !dropped(c) {
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			if !invalid {
				b.WriteString(replacement)
			}
			invalid = true
			i++
			continue
		}
		invalid = false
		b.WriteString(s[i : i+size])
		i += size
	}
	return b.String()
}

// Clip is Text followed by Truncate: s made storable and cut to at most maxBytes bytes on a rune
// boundary.
func Clip(s string, maxBytes int) string {
	s, _ = Truncate(Text(s), maxBytes)
	return s
}

// Truncate returns s cut to at most maxBytes bytes and whether it cut
// anything. The cut falls on a rune boundary, so a valid UTF-8 s stays valid;
// the result may therefore be up to three bytes shorter than maxBytes. A
// negative maxBytes counts as zero. The result shares memory with s.
func Truncate(s string, maxBytes int) (string, bool) {
	maxBytes = max(maxBytes, 0)
	if len(s) <= maxBytes {
		return s, false
	}
	if maxBytes == 0 {
		return "", true
	}
	cut := maxBytes
	// A rune is at most utf8.UTFMax bytes long, so its first byte is at most
	// UTFMax-1 bytes back. Invalid input may have no rune start nearby; then
	// cut where asked.
	for cut > 0 && cut > maxBytes-(utf8.UTFMax-1) && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if !utf8.RuneStart(s[cut]) {
		cut = maxBytes
	}
	return s[:cut], true
}
