package target

import (
	"errors"
	"strings"
	"sync"

	"github.com/trawlhq/trawl/crawlurl"
)

// Scope is a target's scope compiled: its crawlurl.Scope around the canonical seed, and its
// include and exclude patterns as regular expressions. It is safe for concurrent use.
type Scope struct {
	scope  crawlurl.Scope
	filter crawlurl.Filter
}

// Compile compiles s's scope and patterns. It fails (with a *FieldError) only for a spec that
// Validate refuses.
func (s Spec) Compile() (*Scope, error) {
	return compileScope(s.SeedURL, s.Scope, s.ScopePrefix, s.Include, s.Exclude)
}

// compileScope compiles a scope around the canonical seed; the first field at fault, in the
// order of the API's fields, is a *FieldError.
func compileScope(seed, kind, prefix, include, exclude string) (*Scope, error) {
	k, err := scopeKind(kind)
	if err != nil {
		return nil, err
	}
	scope, err := newScope(k, seed, prefix)
	if err != nil {
		return nil, err
	}
	filter, err := compileFilter(include, exclude)
	if err != nil {
		return nil, err
	}
	return &Scope{scope: scope, filter: filter}, nil
}

func scopeKind(kind string) (crawlurl.ScopeKind, *FieldError) {
	k, err := crawlurl.ParseScopeKind(kind)
	if err != nil {
		return k, &FieldError{"scope", "must be host, domain or prefix"}
	}
	return k, nil
}

func newScope(k crawlurl.ScopeKind, seed, prefix string) (crawlurl.Scope, *FieldError) {
	scope, err := crawlurl.NewScope(k, seed, prefix)
	if err != nil {
		return scope, &FieldError{"scope_prefix", strings.TrimPrefix(err.Error(), "frontier: ")}
	}
	return scope, nil
}

func compileFilter(include, exclude string) (crawlurl.Filter, *FieldError) {
	filter, err := crawlurl.CompileFilter(include, exclude)
	if err != nil {
		var pe *crawlurl.PatternError
		if errors.As(err, &pe) {
			return filter, &FieldError{pe.Which, "is not a valid regular expression: " + pe.Err.Error()}
		}
		return filter, &FieldError{"include", err.Error()}
	}
	return filter, nil
}

// Allows reports whether the canonical URL u is in the scope and passes the patterns.
func (c *Scope) Allows(u string) bool { return c.scope.Allows(u) && c.filter.Allows(u) }

// Holds reports whether a URL the target already holds, at depth, is one its spec s still
// crawls, c being s's compiled scope: the seed (depth 0) always is; any other URL must be
// within s.MaxDepth, in the scope and pass the patterns. It is the frontier's side of Admit
// after an edit narrowed the spec (docs/adr/0057-editing-targets.md).
func (s Spec) Holds(c *Scope, u string, depth int) bool {
	return depth == 0 || (depth <= s.MaxDepth && c.Allows(u))
}

// DefaultScopeCacheSize is how many compiled scopes a ScopeCache of size 0 holds.
const DefaultScopeCacheSize = 1024

// ScopeCache holds compiled scopes by target, so that a target's patterns are compiled once,
// not once per result. An entry is keyed by the target's id and the fields of its spec that its
// scope is compiled from: a target whose spec changes gets a new entry, and the old one ages
// out. It holds at most its size; when full, adding an entry evicts an arbitrary one. It is
// safe for concurrent use.
type ScopeCache struct {
	size int

	mu sync.Mutex
	m  map[scopeKey]compiled
}

type scopeKey struct {
	id                                    int64
	seed, scope, prefix, include, exclude string
}

type compiled struct {
	scope *Scope
	err   error
}

// Scopes is the process's one cache of compiled scopes, shared by whoever needs a target's
// scope without a cache of its own (the processor's link admission, the store's dispatch check),
// so that a target's patterns compile once per process. Entries are keyed by target id and spec,
// so users on different databases may share it.
var Scopes = NewScopeCache(0)

// NewScopeCache returns a cache of at most size compiled scopes; size 0 means
// DefaultScopeCacheSize.
func NewScopeCache(size int) *ScopeCache {
	if size <= 0 {
		size = DefaultScopeCacheSize
	}
	return &ScopeCache{size: size, m: make(map[scopeKey]compiled)}
}

// Scope returns the compiled scope of target id whose spec is s, compiling it on first use. A
// spec that does not compile is remembered too: its error comes back without compiling again.
func (c *ScopeCache) Scope(id int64, s Spec) (*Scope, error) {
	k := scopeKey{id: id, seed: s.SeedURL, scope: s.Scope, prefix: s.ScopePrefix, include: s.Include, exclude: s.Exclude}
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return e.scope, e.err
	}
	// Compiled outside the lock: two callers may both compile a new target's scope, and one
	// result wins; neither holds up lookups of other targets meanwhile.
	e.scope, e.err = s.Compile()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.size {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = e
	return e.scope, e.err
}

// Len is the number of compiled scopes held.
func (c *ScopeCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
