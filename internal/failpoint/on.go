//go:build failpoint

package failpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Enabled reports whether this binary was built with failpoints.
const Enabled = true

type point struct {
	fireAt int64
	hits   atomic.Int64
}

var armed = sync.OnceValue(func() map[string]*point { return parse(os.Getenv(Env)) })

// parse reads "name[=n],…". A malformed count arms the point on its first hit.
func parse(s string) map[string]*point {
	m := map[string]*point{}
	for item := range strings.SplitSeq(s, ",") {
		name, count, _ := strings.Cut(strings.TrimSpace(item), "=")
		if name == "" {
			continue
		}
		n, err := strconv.ParseInt(count, 10, 64)
		if err != nil || n < 1 {
			n = 1
		}
		m[name] = &point{fireAt: n}
	}
	return m
}

// exit is replaced in tests.
var exit = func(name string, hit int64) {
	fmt.Fprintf(os.Stderr, "failpoint %s fired on hit %d: exiting with status 137\n", name, hit)
	os.Exit(137)
}

// Inject exits the process with status 137 when the point name is armed and this is the hit
// it is armed for.
func Inject(name string) {
	p := armed()[name]
	if p == nil {
		return
	}
	if hit := p.hits.Add(1); hit == p.fireAt {
		exit(name, hit)
	}
}
