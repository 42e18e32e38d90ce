package crawlurl

import (
	"fmt"
	"regexp"
)

// MaxPatternLength bounds an include or exclude pattern.
const MaxPatternLength = 1000

// A Filter narrows a Scope with regular expressions (RE2 syntax, so matching is linear in the
// URL's length whatever the pattern) matched against canonical URLs: a URL passes when it
// matches Include (if set) and does not match Exclude (if set). Patterns are unanchored; use ^
// and $ to anchor them. The zero Filter passes everything.
type Filter struct {
	Include *regexp.Regexp
	Exclude *regexp.Regexp
}

// CompileFilter compiles an include and an exclude pattern; "" means none. The error names
// which pattern is bad.
func CompileFilter(include, exclude string) (Filter, error) {
	var f Filter
	var err error
	if f.Include, err = compilePattern("include", include); err != nil {
		return Filter{}, err
	}
	if f.Exclude, err = compilePattern("exclude", exclude); err != nil {
		return Filter{}, err
	}
	return f, nil
}

// PatternError is a bad include or exclude pattern.
type PatternError struct {
	Which string // "include" or "exclude"
	Err   error
}

func (e *PatternError) Error() string { return fmt.Sprintf("frontier: %s pattern: %v", e.Which, e.Err) }

func (e *PatternError) Unwrap() error { return e.Err }

func compilePattern(which, p string) (*regexp.Regexp, error) {
	if p == "" {
		return nil, nil
	}
	if len(p) > MaxPatternLength {
		return nil, &PatternError{which, fmt.Errorf("longer than %d bytes", MaxPatternLength)}
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, &PatternError{which, err}
	}
	return re, nil
}

// Allows reports whether the canonical URL u passes the filter.
func (f Filter) Allows(u string) bool {
	if f.Include != nil && !f.Include.MatchString(u) {
		return false
	}
	return f.Exclude == nil || !f.Exclude.MatchString(u)
}
