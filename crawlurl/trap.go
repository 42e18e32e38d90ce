package crawlurl

import (
	"errors"
	"fmt"
	"strings"
)

// ErrTrap is returned by [TrapRules.Check] for a URL that looks like a crawler trap.
var ErrTrap = errors.New("frontier: URL looks like a crawler trap")

// Defaults of TrapRules, used for zero fields.
const (
	DefaultMaxRepeats      = 2
	DefaultMaxSegmentCount = 4
	DefaultMaxSegments     = 64
	DefaultMaxQueryParams  = 64
)

// TrapRules recognise URLs that a crawler should not follow because they are, as far as the
// URL alone tells, generated without end: relative links that stack directories
// (/a/b/a/b/a/b/...), the same directory repeated, very deep paths and absurd queries.
// Infinite spaces that look normal (a calendar whose "next month" link always works) are
// bounded by the target's depth and page limits instead; session ids are stripped by the
// Canonicalizer.
//
// A zero field means its default; a negative one turns that rule off.
type TrapRules struct {
	// MaxURLLength is the longest URL accepted, in bytes; default (and at most) MaxURLLength.
	MaxURLLength int
	// MaxRepeats is how many times in a row a path segment, or a sequence of segments, may
	// repeat: with the default 2, /a/a/ and /a/b/a/b/ pass, /a/a/a/ and /a/b/a/b/a/b/ do not.
	MaxRepeats int
	// MaxSegmentCount is how often one non-empty segment may occur anywhere in the path;
	// default 4, so /x/1/x/2/x/3/x/4/x/ is a trap.
	MaxSegmentCount int
	// MaxSegments is the most path segments; default 64.
	MaxSegments int
	// MaxQueryParams is the most query parameters; default 64.
	MaxQueryParams int
}

func pick(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// Check returns nil if the canonical URL u passes the rules, else an error wrapping ErrTrap
// (or ErrTooLong) that says which rule it broke. u should be canonical (see
// [Canonicalizer.Canonicalize]); Check only slices it.
func (r TrapRules) Check(u string) error {
	maxLen := min(pick(r.MaxURLLength, MaxURLLength), MaxURLLength)
	if maxLen > 0 && len(u) > maxLen {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLong, len(u), maxLen)
	}
	path, query := splitPathQuery(u)
	if n := pick(r.MaxQueryParams, DefaultMaxQueryParams); n > 0 && query != "" && strings.Count(query, "&")+1 > n {
		return fmt.Errorf("%w: more than %d query parameters", ErrTrap, n)
	}
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if n := pick(r.MaxSegments, DefaultMaxSegments); n > 0 && len(segs) > n {
		return fmt.Errorf("%w: %d path segments, limit %d", ErrTrap, len(segs), n)
	}
	if n := pick(r.MaxSegmentCount, DefaultMaxSegmentCount); n > 0 {
		if seg, ok := overused(segs, n); ok {
			return fmt.Errorf("%w: path segment %q occurs more than %d times", ErrTrap, clip(seg), n)
		}
	}
	if n := pick(r.MaxRepeats, DefaultMaxRepeats); n > 0 {
		if seq, ok := repeated(segs, n); ok {
			return fmt.Errorf("%w: path segments %q repeat more than %d times in a row", ErrTrap, clip(seq), n)
		}
	}
	return nil
}

// splitPathQuery returns the path and query of a canonical URL.
func splitPathQuery(u string) (path, query string) {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	if i := strings.IndexByte(u, '/'); i >= 0 {
		u = u[i:]
	} else {
		return "/", ""
	}
	if i := strings.IndexByte(u, '#'); i >= 0 {
		u = u[:i]
	}
	path, query, _ = strings.Cut(u, "?")
	return path, query
}

// overused returns a non-empty segment that occurs more than n times.
func overused(segs []string, n int) (string, bool) {
	if len(segs) <= n {
		return "", false
	}
	counts := make(map[string]int, len(segs))
	for _, s := range segs {
		if s == "" {
			continue
		}
		if counts[s]++; counts[s] > n {
			return s, true
		}
	}
	return "", false
}

// repeated finds a sequence of segments that occurs more than n times in a row. A sequence
// of length L repeats k times from i exactly when segs[j] == segs[j+L] for the (k-1)·L
// positions j from i on, so it looks for such a run for every L.
func repeated(segs []string, n int) (string, bool) {
	for l := 1; l*(n+1) <= len(segs); l++ {
		run := 0
		for j := 0; j+l < len(segs); j++ {
			if segs[j] != segs[j+l] {
				run = 0
				continue
			}
			if run++; run >= n*l {
				start := j + 1 - n*l
				return strings.Join(segs[start:start+l], "/"), true
			}
		}
	}
	return "", false
}
