package store

import (
	"sync"
	"sync/atomic"
)

// urlKey names a frontier URL: URLs are unique per target.
type urlKey struct {
	target int64
	url    string
}

// knownURL is a frontier URL with its id, learned from a committed batch.
type knownURL struct {
	key urlKey
	id  int64
}

// urlCache remembers the ids of frontier URLs this process has seen, so that ApplyResults can
// skip the database for links it already knows: no insert attempt (the URL exists) and no
// lookup for the edge (its id is known). Most links of a crawl point at pages found before, so
// this removes most of the per-link index probes from the persist path (issue #6).
//
// An entry is a fact that never changes: a URL keeps its id until its target is deleted, and
// results of a deleted target are never applied. Entries are added only after the transaction
// that read them commits. Eviction is by generations: when the current map is full it becomes
// the previous one and the oldest generation is dropped; a hit in the previous generation is
// carried forward. So memory is bounded by 2 × size entries and recently used URLs stay.
type urlCache struct {
	mu        sync.Mutex
	size      int
	cur, prev map[urlKey]int64
	hits      atomic.Int64
}

func newURLCache(size int) *urlCache {
	if size <= 0 {
		return nil
	}
	return &urlCache{size: size, cur: make(map[urlKey]int64), prev: map[urlKey]int64{}}
}

// get returns the id of url in target, if known. A nil cache knows nothing.
func (c *urlCache) get(target int64, url string) (int64, bool) {
	if c == nil {
		return 0, false
	}
	k := urlKey{target, url}
	c.mu.Lock()
	defer c.mu.Unlock()
	if id, ok := c.cur[k]; ok {
		c.hits.Add(1)
		return id, true
	}
	id, ok := c.prev[k]
	if ok {
		c.hits.Add(1)
		c.putLocked(k, id)
	}
	return id, ok
}

// add records committed URLs.
func (c *urlCache) add(urls []knownURL) {
	if c == nil || len(urls) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, u := range urls {
		c.putLocked(u.key, u.id)
	}
}

func (c *urlCache) putLocked(k urlKey, id int64) {
	if len(c.cur) >= c.size {
		c.prev, c.cur = c.cur, make(map[urlKey]int64, c.size)
	}
	c.cur[k] = id
}

// SetURLCache makes ApplyResults remember the ids of up to about size frontier URLs (between
// size and 2 × size entries; 0 turns the cache off). About 150 bytes per entry.
func (s *Store) SetURLCache(size int) { s.known = newURLCache(size) }
