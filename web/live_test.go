package web

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/a-h/templ"
	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
)

func TestSpanAndRel(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC)
	r := timeRef{now}
	for _, tt := range []struct {
		at   time.Time
		want string
	}{
		{time.Time{}, "—"},
		{now.Add(-300 * time.Millisecond), "now"},
		{now.Add(-85 * time.Second), "1m25s ago"},
		{now.Add(3 * time.Second), "in 3s"},
		{now.Add(-(2*time.Hour + 5*time.Minute + 59*time.Second)), "2h05m ago"},
		{now.Add(47 * time.Hour), "in 47h00m"},
		{now.Add(-49 * time.Hour), "2026-12-05 18:00 UTC"},
	} {
		if got := r.rel(tt.at); got != tt.want {
			t.Errorf("rel(%v) = %q, want %q", tt.at.Sub(now), got, tt.want)
		}
	}
	for _, tt := range []struct {
		d        time.Duration
		want     string
		wantISO  string
		describe string
	}{
		{-time.Second, "0s", "PT0S", "negative"},
		{999 * time.Millisecond, "0s", "PT0S", "under a second"},
		{45 * time.Second, "45s", "PT45S", "seconds"},
		{85 * time.Second, "1m25s", "PT1M25S", "minutes"},
		{2*time.Hour + 5*time.Minute + 7*time.Second, "2h05m", "PT2H5M7S", "hours"},
		{76 * time.Hour, "3d04h", "PT76H0S", "days"},
	} {
		if got := span(tt.d); got != tt.want {
			t.Errorf("span(%s) = %q, want %q (%s)", tt.d, got, tt.want, tt.describe)
		}
		if got := isoDuration(tt.d); got != tt.wantISO {
			t.Errorf("isoDuration(%s) = %q, want %q", tt.d, got, tt.wantISO)
		}
	}
}

func renderString(t *testing.T, c templ.Component) string {
	t.Helper()
	var b bytes.Buffer
	if err := c.Render(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestRelTimeElement: a moment is a <time> with its RFC 3339 datetime, the same time as its
// title (until the script puts it in the browser's zone) and the relative text.
func TestRelTimeElement(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC)
	paris := time.FixedZone("CET", 3600)
	at := now.Add(-85 * time.Second).In(paris)
	got := renderString(t, relTime(timeRef{now}, at))
	want := `<time datetime="2026-12-07T18:58:35Z" title="2026-12-07T18:58:35Z" data-rel>1m25s ago</time>`
	if got != want {
		t.Errorf("relTime = %s\nwant      %s", got, want)
	}
	if got := renderString(t, relTime(timeRef{now}, time.Time{})); got != "—" {
		t.Errorf("relTime of a zero time = %q, want a dash", got)
	}
	if got := renderString(t, elapsedTime(timeRef{now}, now.Add(-85*time.Second))); got != `<time datetime="PT1M25S" data-since="2026-12-07T18:58:35Z">1m25s</time>` {
		t.Errorf("elapsedTime = %s", got)
	}
}

func TestTargetTimes(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC)
	created := now.Add(-10 * time.Minute)
	finished := now.Add(-time.Minute)
	summary := func(state string, total, done int64, maxPages int, rate float64) store.TargetSummary {
		return store.TargetSummary{Target: store.Target{ID: 1, Spec: target.Spec{MaxPages: maxPages}, State: state,
			URLsTotal: total, URLsDone: done, CreatedAt: created}, PagesPerSec: rate}
	}
	done := summary(store.TargetDone, 50, 50, 100, 0)
	done.FinishedAt = &finished
	cancelled := summary(store.TargetCancelled, 50, 20, 100, 0)
	cancelled.URLsCancelled = 30
	cancelled.FinishedAt = &finished
	for _, tt := range []struct {
		name string
		t    store.TargetSummary
		want runTimes
	}{
		{"running", summary(store.TargetActive, 300, 100, 1000, 20),
			runTimes{Started: created, Rate: 20, Left: 200, ETA: now.Add(10 * time.Second)}},
		{"running, max pages reached", summary(store.TargetActive, 1000, 400, 1000, 3),
			runTimes{Started: created, Rate: 3, Left: 600, ETA: now.Add(200 * time.Second), Capped: true}},
		{"running, nothing fetched for a minute", summary(store.TargetActive, 300, 100, 1000, 0),
			runTimes{Started: created, Left: 200, Unknown: "unknown: nothing fetched in the last minute"}},
		{"running, nothing left", summary(store.TargetActive, 300, 300, 1000, 2),
			runTimes{Started: created, Rate: 2, ETA: now}},
		{"running, too slow to say", summary(store.TargetActive, 10_000_000, 0, 10_000_000, 0.01),
			runTimes{Started: created, Rate: 0.01, Left: 10_000_000, Capped: true, Unknown: "unknown: more than a year at this rate"}},
		{"paused", summary(store.TargetPaused, 300, 100, 1000, 5),
			runTimes{Started: created, Rate: 5, Left: 200, Unknown: "unknown: paused"}},
		{"done", done, runTimes{Started: created, Finished: finished, Took: 9 * time.Minute}},
		{"cancelled", cancelled, runTimes{Started: created, Finished: finished, Took: 9 * time.Minute}},
	} {
		got := targetTimes(tt.t, now)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: targetTimes (-want +got):\n%s", tt.name, diff)
		}
	}
}

// TestRunTimesView: a running target shows its start, elapsed time, rate and ETA; a finished
// one its start, finish and duration.
func TestRunTimesView(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC)
	created := now.Add(-10 * time.Minute)
	running := renderString(t, runTimesView(runTimes{Started: created, Rate: 20, Left: 200, ETA: now.Add(10 * time.Second)}, timeRef{now}))
	for _, want := range []string{
		`id="time-started"><time datetime="2026-12-07T18:50:00Z"`, ">10m00s ago</time>",
		`id="time-elapsed"><time datetime="PT10M0S" data-since="2026-12-07T18:50:00Z">10m00s</time>`,
		`id="time-rate">20.00 pages/s`,
		`id="time-eta"><time datetime="2026-12-07T19:00:10Z"`, ">in 10s</time>", "200 URLs left", "more may be discovered",
	} {
		if !strings.Contains(running, want) {
			t.Errorf("running target's times lack %q:\n%s", want, running)
		}
	}
	if strings.Contains(running, "Finished") {
		t.Errorf("a running target shows a finish:\n%s", running)
	}
	unknown := renderString(t, runTimesView(runTimes{Started: created, Unknown: "unknown: paused"}, timeRef{now}))
	if !strings.Contains(unknown, `id="time-eta">unknown: paused</dd>`) {
		t.Errorf("an ETA that cannot be estimated does not say unknown:\n%s", unknown)
	}
	finished := renderString(t, runTimesView(runTimes{Started: created, Finished: now.Add(-time.Minute), Took: 9 * time.Minute}, timeRef{now}))
	for _, want := range []string{`id="time-started">`, `id="time-finished"><time datetime="2026-12-07T18:59:00Z"`, ">1m00s ago</time>",
		`id="time-duration"><time datetime="PT9M0S">9m00s</time>`} {
		if !strings.Contains(finished, want) {
			t.Errorf("finished target's times lack %q:\n%s", want, finished)
		}
	}
	for _, bad := range []string{"ETA", "Elapsed", "data-since"} {
		if strings.Contains(finished, bad) {
			t.Errorf("a finished target shows %q:\n%s", bad, finished)
		}
	}
}

// TestHostsOfAFinishedTargetAreNotScheduled: only an active target's hosts have a next
// fetch; a past one is "ready", never "… ago"; an expired backoff is a dash.
func TestHostsOfAFinishedTargetAreNotScheduled(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC)
	past, future := now.Add(-104*time.Second), now.Add(3*time.Second)
	hosts := store.HostList{Rows: []store.HostState{
		{Host: "past.example", NextFetchAt: past, BackoffUntil: &past},
		{Host: "future.example", NextFetchAt: future, BackoffUntil: &future},
	}}
	cell := regexp.MustCompile(`<td class="next-fetch">(.*?)</td>`)
	for _, tt := range []struct {
		state string
		want  []string
	}{
		{store.TargetActive, []string{"ready", `<time datetime="2026-12-07T19:00:03Z" title="2026-12-07T19:00:03Z" data-rel>in 3s</time>`}},
		{store.TargetPaused, []string{`<span class="muted">not scheduled</span>`, `<span class="muted">not scheduled</span>`}},
		{store.TargetDone, []string{`<span class="muted">not scheduled</span>`, `<span class="muted">not scheduled</span>`}},
		{store.TargetCancelled, []string{`<span class="muted">not scheduled</span>`, `<span class="muted">not scheduled</span>`}},
	} {
		d := targetDetail{T: store.TargetSummary{Target: store.Target{ID: 1, State: tt.state}}, Hosts: hosts, Now: timeRef{now}}
		html := renderString(t, targetHosts(d))
		var got []string
		for _, m := range cell.FindAllStringSubmatch(html, -1) {
			got = append(got, strings.TrimSpace(m[1]))
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s target: next fetch cells (-want +got):\n%s", tt.state, diff)
		}
		if strings.Contains(html, "ago") {
			t.Errorf("%s target: a host shows a past time:\n%s", tt.state, html)
		}
	}
}

// TestChangeKeyIgnoresRunningTimes: a fragment whose only change is the text of its running
// times (which the browser keeps current) is not sent again; a moved moment is.
func TestChangeKeyIgnoresRunningTimes(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	frag := func(now, at time.Time) []byte {
		r := timeRef{now}
		return []byte(renderString(t, relTime(r, at)) + renderString(t, elapsedTime(r, start)) + "<p>x</p>")
	}
	now := start.Add(time.Hour)
	a, b := frag(now, start), frag(now.Add(7*time.Second), start)
	if bytes.Equal(a, b) {
		t.Fatalf("the fragments do not differ at all: %s", a)
	}
	if !bytes.Equal(changeKey(a), changeKey(b)) {
		t.Errorf("a fragment whose times only moved counts as changed:\n%s\n%s", changeKey(a), changeKey(b))
	}
	if bytes.Equal(changeKey(a), changeKey(frag(now, start.Add(time.Second)))) {
		t.Errorf("a fragment whose moment changed counts as unchanged")
	}
}

func TestWriteEvent(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, html, want string }{
		{"lines", "<p>a</p>\n<p>b</p>", "event: x\ndata: <p>a</p>\ndata: <p>b</p>\n\n"},
		// A carriage return in crawled text must not end a data line in the middle.
		{"carriage return", "<td>a\rdata: b</td>", "event: x\ndata: <td>a\ndata: data: b</td>\n\n"},
		{"empty", "", "event: x\ndata: \n\n"},
	} {
		var b bytes.Buffer
		if err := writeEvent(&b, "x", []byte(tt.html)); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("%s: writeEvent = %q, want %q", tt.name, b.String(), tt.want)
		}
	}
}

func TestHTTPDateIsRFC3339(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Mon, 02 Jan 2006 15:04:05 GMT":  "2006-01-02T15:04:05Z",
		"Monday, 02-Jan-06 15:04:05 GMT": "2006-01-02T15:04:05Z",
		"Mon Jan  2 15:04:05 2006":       "2006-01-02T15:04:05Z",
		"yesterday":                      "",
		"":                               "",
	} {
		if got := httpDate(in); got != want {
			t.Errorf("httpDate(%q) = %q, want %q", in, got, want)
		}
	}
}

// sseMsg is one server-sent event as a browser's EventSource sees it.
type sseMsg struct{ event, data string }

// events reads the server-sent events of path until the test ends; the channel closes when
// the stream does.
func events(t *testing.T, c *client, path string) <-chan sseMsg {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		resp.Body.Close()
		t.Fatalf("GET %s = %d %s, want an event stream", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ch := make(chan sseMsg, 1000)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		var m sseMsg
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if m.event != "" {
					select {
					case ch <- m:
					case <-ctx.Done():
						return
					}
				}
				m = sseMsg{}
			case strings.HasPrefix(line, "event: "):
				m.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				if m.data != "" {
					m.data += "\n"
				}
				m.data += strings.TrimPrefix(line, "data: ")
			}
		}
	})
	t.Cleanup(func() { cancel(); resp.Body.Close(); wg.Wait() })
	return ch
}

// next waits for the first event named one of names whose data passes ok.
func next(t *testing.T, ch <-chan sseMsg, ok func(string) bool, names ...string) sseMsg {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case m, open := <-ch:
			if !open {
				t.Fatalf("the stream ended while waiting for %v", names)
			}
			for _, n := range names {
				if m.event == n && (ok == nil || ok(m.data)) {
					return m
				}
			}
		case <-timeout:
			t.Fatalf("no %v event within 15 s", names)
		}
	}
}

func has(s string) func(string) bool { return func(d string) bool { return strings.Contains(d, s) } }

// TestTargetPageIsLive: a target's page names its stream and marks its live parts; the stream
// pushes each part, again only when it changed (a state change, an action), and says so and
// ends when the target is deleted.
func TestTargetPageIsLive(t *testing.T) {
	t.Parallel()
	ts, st := newTestServer(t, "", nil)
	c := newClient(t, ts.URL)
	tg, err := st.CreateTarget(t.Context(), target.Spec{Name: "live", SeedURL: "http://example.com/", Scope: "host", MaxDepth: 1, MaxPages: 10, PerHostRPS: 1, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	path := "/targets/" + i64(tg.ID)
	_, page := c.get(path + "?status=2xx")
	for _, want := range []string{
		`<main id="main" tabindex="-1" hx-ext="sse" sse-connect="/events` + path + `?status=2xx" sse-close="close">`,
		`sse-swap="state"`, `sse-swap="actions"`, `sse-swap="progress"`, `sse-swap="chart"`, `sse-swap="hosts"`, `sse-swap="errors"`,
		`id="stat-fetched"`, `id="time-started"><time datetime="`, `id="time-eta">unknown: nothing fetched in the last minute`,
		`<figure class="chart">`, `<meta name="server-time" content="`, `<script src="/static/reltime.js" defer></script>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("target page lacks %s", want)
		}
	}
	if strings.Contains(page, "hx-trigger") {
		t.Errorf("the target page still polls")
	}

	ev := events(t, c, "/events"+path)
	first := map[string]string{}
	for len(first) < 6 {
		m := next(t, ev, nil, "state", "actions", "progress", "chart", "hosts", "errors")
		first[m.event] = m.data
	}
	for name, want := range map[string]string{
		"state": ">running</span>", "actions": `value="pause"`, "progress": `id="stat-fetched">0</dd>`,
		"chart": `<polyline points="`, "hosts": `<td>example.com</td><td class="next-fetch">ready</td>`, "errors": "No errors.",
	} {
		if !strings.Contains(first[name], want) {
			t.Errorf("first %s event lacks %q:\n%s", name, want, first[name])
		}
	}
	// The same state is not sent again; a change is.
	if _, err := st.PauseTarget(t.Context(), tg.ID); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for {
		m := next(t, ev, nil, "state", "actions")
		seen = append(seen, m.event+": "+m.data)
		if m.event == "actions" {
			if !strings.Contains(m.data, `value="resume"`) {
				t.Errorf("actions after pausing = %s, want resume", m.data)
			}
			break
		}
	}
	if len(seen) != 2 || !strings.Contains(seen[0], ">paused</span>") {
		t.Errorf("after pausing, the stream sent %q, want the paused state once, then the actions", seen)
	}
	next(t, ev, has("unknown: paused"), "progress")

	if _, err := st.DeleteTarget(t.Context(), tg.ID); err != nil {
		t.Fatal(err)
	}
	next(t, ev, has(">deleting</span>"), "state")
	for done := false; !done; {
		step, err := st.PurgeTarget(t.Context(), tg.ID, 100)
		if err != nil {
			t.Fatal(err)
		}
		done = step.Done
	}
	next(t, ev, has(`id="target-gone"`), "progress")
	next(t, ev, nil, sseClose)
	select {
	case m, open := <-ev:
		if open {
			t.Errorf("the stream of a deleted target went on with %+v", m)
		}
	case <-time.After(10 * time.Second):
		t.Error("the stream of a deleted target did not end")
	}
}

// TestTargetsListIsLive: the targets page streams its list with its own filter; a new target
// shows up without a reload, and not in a list filtered out of it.
func TestTargetsListIsLive(t *testing.T) {
	t.Parallel()
	ts, st := newTestServer(t, "", nil)
	c := newClient(t, ts.URL)
	spec := target.Spec{Name: "a", SeedURL: "http://a.example/", Scope: "host", MaxDepth: 1, MaxPages: 10, PerHostRPS: 1, MaxAttempts: 2}
	a, err := st.CreateTarget(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	_, page := c.get("/targets?state=active")
	if !strings.Contains(page, `sse-connect="/events/targets?state=active"`) || !strings.Contains(page, `<div id="targets-list" sse-swap="targets">`) {
		t.Fatalf("the targets page does not stream its list:\n%s", page)
	}
	active := events(t, c, "/events/targets?state=active")
	cancelled := events(t, c, "/events/targets?state=cancelled")
	next(t, active, has(`id="target-`+i64(a.ID)+`"`), "targets")
	if m := next(t, cancelled, nil, "targets"); strings.Contains(m.data, `id="target-`+i64(a.ID)+`"`) {
		t.Errorf("the cancelled targets' stream shows a running target:\n%s", m.data)
	}
	spec.Name = "b"
	b, err := st.CreateTarget(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	m := next(t, active, has(`id="target-`+i64(b.ID)+`"`), "targets")
	if !strings.Contains(m.data, `<td class="num" data-field="fetched">0</td>`) || !strings.Contains(m.data, `id="action-pause-`+i64(b.ID)+`"`) {
		t.Errorf("a live row lacks its figures or actions:\n%s", m.data)
	}
	if _, err := st.CancelTarget(t.Context(), a.ID); err != nil {
		t.Fatal(err)
	}
	m = next(t, cancelled, has(`id="target-`+i64(a.ID)+`"`), "targets")
	if strings.Contains(m.data, `id="target-`+i64(b.ID)+`"`) {
		t.Errorf("the cancelled targets' stream shows a running target:\n%s", m.data)
	}
}

// TestWorkersPageIsLive: the workers page streams its table instead of polling it; a worker
// that starts shows up.
func TestWorkersPageIsLive(t *testing.T) {
	t.Parallel()
	reg := NewWorkers(nil)
	beat := func(id string) {
		reg.Observe(message.Heartbeat{Envelope: message.NewEnvelope(message.TypeHeartbeat), WorkerID: id, Kind: "crawler",
			StartedAt: time.Now().Add(-time.Minute), IntervalMS: 60_000})
	}
	beat("crawler-one")
	ts, _ := newTestServer(t, "", func(s *Server) { s.Workers = reg })
	c := newClient(t, ts.URL)
	_, page := c.get("/workers")
	if !strings.Contains(page, `sse-connect="/events/workers"`) || !strings.Contains(page, `<div id="workers" sse-swap="workers">`) {
		t.Errorf("the workers page does not stream its table:\n%s", page)
	}
	if strings.Contains(page, "hx-trigger") || strings.Contains(page, "/workers/list") {
		t.Errorf("the workers page still polls:\n%s", page)
	}
	if resp, _ := c.get("/workers/list"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /workers/list = %d, want 404: the polled fragment is gone", resp.StatusCode)
	}
	ev := events(t, c, "/events/workers")
	m := next(t, ev, has("crawler-one"), "workers")
	if !regexp.MustCompile(`<time datetime="[^"]+" title="[^"]+" data-rel>1m0[0-9]s ago</time>`).MatchString(m.data) {
		t.Errorf("the worker's start is not a relative time:\n%s", m.data)
	}
	beat("crawler-two")
	next(t, ev, has("crawler-two"), "workers")
}

// A fetch under a millisecond says so; only an interval of zero is "—".
func TestFetchTook(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		ms   int
		want string
	}{{0, "< 1 ms"}, {7, "7 ms"}, {1500, "1.5 s"}} {
		if got := fetchTook(tt.ms); got != tt.want {
			t.Errorf("fetchTook(%d) = %q, want %q", tt.ms, got, tt.want)
		}
	}
	if got := ms(0); got != "—" {
		t.Errorf("ms(0) = %q, want —", got)
	}
}
