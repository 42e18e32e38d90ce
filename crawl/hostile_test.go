package crawl

import (
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/process"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testsite"
)

func hostileSite(t *testing.T) *testsite.Hostile {
	t.Helper()
	h := testsite.NewHostile()
	t.Cleanup(h.Close)
	return h
}

// checkStorable fails unless every text field of res can be stored: valid UTF-8 without NUL.
func checkStorable(t *testing.T, res message.FetchResult) {
	t.Helper()
	for name, s := range map[string]string{"Title": res.Title, "Text": res.Text, "ContentType": res.ContentType, "Error": res.Error, "ETag": res.ETag} {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			t.Errorf("%s %q is not storable", name, s)
		}
	}
	if len(res.ContentType) > message.MaxContentTypeBytes {
		t.Errorf("content type of %d bytes, limit %d", len(res.ContentType), message.MaxContentTypeBytes)
	}
	for _, l := range res.Links {
		if c, err := crawlurl.Canonicalize(l); err != nil || c != l {
			t.Errorf("link %q is not canonical: %q, %v", l, c, err)
		}
	}
}

// TestHostileBodies fetches pages that are too big, never end, or expand from gzip: each is
// cut at the limit, flagged truncated, and what was kept is parsed.
func TestHostileBodies(t *testing.T) {
	t.Parallel()
	h := hostileSite(t)
	const limit = 2 << 20 // well below the 50 MB and 256 MiB bodies; parsing more only slows the test
	f := testFetcher(t, FetchConfig{MaxBodyBytes: limit})
	for _, tc := range []struct{ path, title string }{
		{testsite.HostileHuge, "huge"},
		{testsite.HostileEndless, "endless"},
		{testsite.HostileGzipBomb, "bomb"},
	} {
		t.Run(tc.title, func(t *testing.T) {
			t.Parallel()
			res := f.Fetch(testJob(h.URL()+tc.path), "w")
			checkStorable(t, res)
			if res.Error != "" || res.Status != 200 {
				t.Fatalf("%s: status %d error %q", tc.path, res.Status, res.Error)
			}
			if !res.Truncated || res.Size != limit || res.Title != tc.title {
				t.Errorf("%s: truncated %t size %d title %q, want true, %d, %q", tc.path, res.Truncated, res.Size, res.Title, limit, tc.title)
			}
		})
	}
	// The bomb as a file (a sitemap.xml.gz): kept as the compressed bytes, never expanded
	// (colly would gunzip it after its size limit), and not parsed.
	res := f.Fetch(testJob(h.URL()+testsite.HostileSitemapBomb), "w")
	if res.Error != "" || res.Status != 200 || res.Truncated || res.Size == 0 || res.Size > 1<<20 || res.Text != "" {
		t.Errorf("sitemap bomb: status %d error %q truncated %t size %d text %d bytes, want the compressed file as is",
			res.Status, res.Error, res.Truncated, res.Size, len(res.Text))
	}
}

// TestGzipBombMemory checks that expanding the gzip bomb does not cost memory in proportion
// to its expanded size (256 MiB), only to the body limit.
func TestGzipBombMemory(t *testing.T) {
	h := hostileSite(t)
	const limit = 1 << 20
	f := testFetcher(t, FetchConfig{MaxBodyBytes: limit})
	f.Fetch(testJob(h.URL()+"/warm-up"), "w")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res := f.Fetch(testJob(h.URL()+testsite.HostileGzipBomb), "w")
	runtime.ReadMemStats(&after)
	if !res.Truncated || res.Size != limit {
		t.Fatalf("truncated %t size %d, want true %d", res.Truncated, res.Size, limit)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	if alloc > 32<<20 {
		t.Errorf("fetching the bomb allocated %d MiB; want a small multiple of the %d MiB limit", alloc>>20, limit>>20)
	}
	t.Logf("fetching the %d MiB bomb with a %d MiB limit allocated %.1f MiB", testsite.HostileBombBytes>>20, limit>>20, float64(alloc)/(1<<20))
}

// TestHostileSlowServers: a server that drips its headers fails the fetch as a timeout; one
// that drips its body is cut when the total time runs out and what arrived is kept.
func TestHostileSlowServers(t *testing.T) {
	t.Parallel()
	h := hostileSite(t)
	f := testFetcher(t, FetchConfig{Timeout: 2 * time.Second, FirstByteTimeout: 300 * time.Millisecond})
	res := f.Fetch(testJob(h.URL()+testsite.HostileSlowHeaders), "w")
	if res.Status != 0 || res.ErrorClass != "timeout" || res.Permanent {
		t.Errorf("slow headers: status %d class %q permanent %t error %q, want a retryable timeout", res.Status, res.ErrorClass, res.Permanent, res.Error)
	}

	f = testFetcher(t, FetchConfig{Timeout: 1500 * time.Millisecond})
	res = f.Fetch(testJob(h.URL()+testsite.HostileSlowBody), "w")
	checkStorable(t, res)
	if res.Error != "" || res.Status != 200 || !res.Truncated || res.Title != "slow" || len(res.Links) != 1 {
		t.Errorf("slow body: status %d error %q truncated %t title %q links %q, want the partial page, flagged", res.Status, res.Error, res.Truncated, res.Title, res.Links)
	}
}

func TestHostileContent(t *testing.T) {
	t.Parallel()
	h := hostileSite(t)
	f := testFetcher(t, FetchConfig{})
	base := h.URL()

	res := f.Fetch(testJob(base+testsite.HostileInvalidUTF8), "w")
	checkStorable(t, res)
	// The HTML tokenizer turns NUL in the title and attributes into U+FFFD, as browsers do;
	// NUL in text is dropped; each run of invalid UTF-8 becomes one U+FFFD.
	if res.Status != 200 || res.Title != "bad\uFFFD \uFFFD title é" || res.Text != "nulhere \uFFFD( \uFFFD end\nx" ||
		!slices.Equal(res.Links, []string{base + "/ok%EF%BF%BD"}) {
		t.Errorf("invalid UTF-8: status %d title %q text %q links %q", res.Status, res.Title, res.Text, res.Links)
	}

	for _, p := range []string{testsite.HostileWrongCharset, testsite.HostileWrongUTF8Label} {
		res := f.Fetch(testJob(base+p), "w")
		checkStorable(t, res)
		if res.Title != testsite.HostileCharsetText || !strings.HasPrefix(res.Text, testsite.HostileCharsetText) {
			t.Errorf("%s: title %q text %.80q, want %q", p, res.Title, res.Text, testsite.HostileCharsetText)
		}
	}

	res = f.Fetch(testJob(base+testsite.HostileMalformed), "w")
	checkStorable(t, res)
	if res.Status != 200 || res.Title != "mal<formed" || !slices.Contains(res.Links, base+"/m1") || !slices.Contains(res.Links, base+"/m2") {
		t.Errorf("malformed: status %d title %q links %q", res.Status, res.Title, res.Links)
	}

	res = f.Fetch(testJob(base+testsite.HostileManyLinks), "w")
	checkStorable(t, res)
	if len(res.Links) != DefaultMaxLinks || !res.Truncated || res.Links[0] != base+"/many/0" {
		t.Errorf("10,000 links: kept %d, truncated %t, want the first %d, flagged", len(res.Links), res.Truncated, DefaultMaxLinks)
	}

	res = f.Fetch(testJob(base+testsite.HostileLongURL), "w")
	long := base + testsite.LongURLPath(base)
	if len(long) != testsite.HostileLongURLBytes || !slices.Equal(res.Links, []string{long}) {
		t.Errorf("long URL: links %d (%v), want only the %d-byte one", len(res.Links), len(res.Links) > 0 && len(res.Links[0]) == len(long), len(long))
	}
	res = f.Fetch(testJob(long), "w")
	if res.Status != 200 || res.Title != "long target" {
		t.Errorf("fetching the %d-byte URL: status %d title %q error %q", len(long), res.Status, res.Title, res.Error)
	}

	res = f.Fetch(testJob(base+testsite.HostileContentType), "w")
	checkStorable(t, res)
	if res.Status != 200 || res.Title != "typed" || !strings.HasPrefix(res.ContentType, "text/html; charset=utf-8; x=aaa") {
		t.Errorf("8,000-byte content type: status %d title %q content type %.40q", res.Status, res.Title, res.ContentType)
	}

	res = f.Fetch(testJob(base+testsite.HostileSchemes), "w")
	if !slices.Equal(res.Links, []string{base + testsite.HostileSchemesTarget}) {
		t.Errorf("javascript:, data: and other schemes: links %q, want only the http one", res.Links)
	}
	for _, r := range h.Requests() {
		if strings.Contains(r, "data-bait") || strings.HasPrefix(r, "/many/") || strings.HasPrefix(r, "/toolong/") {
			t.Errorf("the fetcher requested %q on its own", r)
		}
	}
}

// walk crawls from seed the way the pipeline does, without the broker and the database:
// fetch, let the processor's policy admit the links one level deeper, deduplicate on the
// canonical URL, repeat. It returns the number of fetches and the last result.
func walk(t *testing.T, f *Fetcher, seed string, maxDepth int) (int, message.FetchResult) {
	t.Helper()
	tg := &store.Target{Spec: target.Spec{SeedURL: seed, Scope: "host", MaxDepth: maxDepth}}
	policy := process.Policy{Canon: crawlurl.Default}
	fetched := 0
	queue := []store.NewURL{{URL: seed, Depth: 0}}
	seen := map[string]bool{seed: true}
	var last message.FetchResult
	for len(queue) > 0 && fetched < 1000 {
		next := queue[0]
		queue = queue[1:]
		job := testJob(next.URL)
		job.Depth = next.Depth
		last = f.Fetch(job, "w")
		fetched++
		for _, nu := range policy.Admit(tg, next.Depth, last.Links) {
			if !seen[nu.URL] {
				seen[nu.URL] = true
				queue = append(queue, nu)
			}
		}
	}
	return fetched, last
}

// TestRedirectChainIsBoundedByDepth follows a 30-hop redirect chain: each hop is a separate
// fetch whose Location is its only link, joining the frontier one level deeper. The target's
// depth limit ends the chain; every hop is fetched once.
func TestRedirectChainIsBoundedByDepth(t *testing.T) {
	t.Parallel()
	h := hostileSite(t)
	f := testFetcher(t, FetchConfig{})
	for _, maxDepth := range []int{5, 40} {
		fetched, last := walk(t, f, h.URL()+testsite.HostileChain, maxDepth)
		want := min(maxDepth, testsite.HostileChainHops) + 1
		if fetched != want {
			t.Errorf("max depth %d: %d fetches, want %d", maxDepth, fetched, want)
		}
		if maxDepth > testsite.HostileChainHops && last.Title != "end of chain" {
			t.Errorf("max depth %d: last page %q (status %d), want the end of the chain", maxDepth, last.Title, last.Status)
		}
	}
}

// TestTrapsAreBounded crawls the trap pages with a generous depth limit: the self-nesting
// directory ends at the repeated-segment rule, the session-id trap at the first page (its
// links canonicalise to itself), and the infinite calendar at the depth limit.
func TestTrapsAreBounded(t *testing.T) {
	t.Parallel()
	h := hostileSite(t)
	f := testFetcher(t, FetchConfig{})
	tests := []struct {
		name, path string
		maxDepth   int
		want       int
	}{
		{"nesting directories", testsite.HostileNest, 100, 3}, // /nest/, /nest/x/, /nest/x/x/
		{"session ids", testsite.HostileSession, 100, 1},
		{"calendar", testsite.HostileCalendar, 5, 1 + 2*5}, // one month each way per level
	}
	for _, tc := range tests {
		if got, _ := walk(t, f, h.URL()+tc.path, tc.maxDepth); got != tc.want {
			t.Errorf("%s: %d fetches, want %d", tc.name, got, tc.want)
		}
	}
}
