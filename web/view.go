package web

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"

	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/store"
)

func i64(n int64) string { return strconv.FormatInt(n, 10) }
func itoa(n int) string  { return strconv.Itoa(n) }

// plural picks the singular or plural wording for n.
func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
func f1(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }
func pct(f float64) string {
	return strconv.FormatFloat(math.Floor(f*1000)/10, 'f', 1, 64) + "%"
}
func rate(f float64) string {
	if f >= 100 {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'f', 2, 64)
}
func rps(f float64) string {
	if f <= 0 {
		return "unlimited requests/s per host"
	}
	return strconv.FormatFloat(f, 'g', 4, 64) + " requests/s per host"
}

// fetchTook shows how long a fetch took: under a millisecond reads "< 1 ms", not "—", which
// ms gives for a zero interval.
func fetchTook(n int) string {
	if n <= 0 {
		return "< 1 ms"
	}
	return ms(n)
}

func ms(n int) string {
	if n == 0 {
		return "—"
	}
	if n < 1000 {
		return itoa(n) + " ms"
	}
	return strconv.FormatFloat(float64(n)/1000, 'f', 1, 64) + " s"
}
func size(n int) string {
	switch {
	case n < 1024:
		return itoa(n) + " B"
	case n < 1024*1024:
		return strconv.FormatFloat(float64(n)/1024, 'f', 1, 64) + " KiB"
	default:
		return strconv.FormatFloat(float64(n)/1024/1024, 'f', 1, 64) + " MiB"
	}
}

// fallbackCause is why the queue figures came over AMQP rather than from the management API,
// without the error's package prefix; empty when they came from the API.
func fallbackCause(qs []pipeline.QueueStat) string {
	for _, q := range qs {
		if q.Source == "amqp" {
			cause := strings.TrimPrefix(q.Cause, "pipeline: ")
			if cause == "" {
				return "The management API did not answer."
			}
			return cause
		}
	}
	return ""
}

// hasTarget reports whether targets holds the target id.
func hasTarget(targets []store.Target, id int64) bool {
	return slices.ContainsFunc(targets, func(t store.Target) bool { return t.ID == id })
}

// errorTotals adds up a target's error groups by the state of their URLs.
func errorTotals(gs []store.ErrorGroup) (failed, retrying, stored int64) {
	for _, g := range gs {
		failed, retrying, stored = failed+g.Failed, retrying+g.Retrying, stored+g.Stored
	}
	return failed, retrying, stored
}

// rssSize is a worker's resident memory, or a dash when it did not say.
func rssSize(n int64) string {
	if n <= 0 {
		return "—"
	}
	return size(int(n))
}

// workerRate is a worker's pages per second, or a dash before its second heartbeat.
func workerRate(w WorkerInfo) string {
	if !w.HasRate {
		return "—"
	}
	return rate(w.Rate)
}

func robots(status *int) string {
	switch {
	case status == nil:
		return "not fetched"
	case *status >= 200 && *status < 300:
		return "ok (" + itoa(*status) + ")"
	case *status >= 400 && *status < 500:
		return "none (" + itoa(*status) + "): all allowed"
	default:
		return "unavailable (" + itoa(*status) + ")"
	}
}
func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
func idOrEmpty(id int64) string {
	if id == 0 {
		return ""
	}
	return i64(id)
}

func targetHref(id int64) templ.SafeURL { return templ.SafeURL("/targets/" + i64(id)) }
func pageHref(id int64) templ.SafeURL   { return templ.SafeURL("/pages/" + i64(id)) }

func targetURL(id int64, q store.PageQuery, after string) string {
	v := pageValues(q)
	if after != "" {
		v.Set("after", after)
	}
	return "/targets/" + i64(id) + "?" + v.Encode()
}

// pagesNavURL is the link to the page of a target's page list that cursor (a PrevCursor, as
// key "before", or a NextCursor, as "after") leads to, keeping filters and sort; empty when there
// is no such page.
func pagesNavURL(id int64, q store.PageQuery, key, cursor string) string {
	if cursor == "" {
		return ""
	}
	v := pageValues(q)
	v.Set(key, cursor)
	return "/targets/" + i64(id) + "?" + v.Encode()
}

// targetsNavURL is pagesNavURL for the targets list, filtered by state.
func targetsNavURL(state, key, cursor string) string {
	if cursor == "" {
		return ""
	}
	v := url.Values{key: {cursor}}
	if state != "" {
		v.Set("state", state)
	}
	return "/targets?" + v.Encode()
}

// retriesNavURL is pagesNavURL for one of the lists on /retries: key is its cursor parameter.
func retriesNavURL(f store.URLFilter, key, cursor string) string {
	if cursor == "" {
		return ""
	}
	return retriesURL(f, key, cursor)
}

// totalText says how many rows a list has: "1,234 pages", or "about 56,000 pages" when the
// count is the planner's estimate (rounded to two significant digits).
func totalText(t store.Total, one, many string) string {
	if !t.Estimated {
		return thousands(t.N) + " " + plural(t.N, one, many)
	}
	n := t.N
	for p := int64(1); ; p *= 10 {
		if n < 100*p {
			n = (n + p/2) / p * p
			break
		}
	}
	return "about " + thousands(n) + " " + many
}

// thousands writes n with commas between groups of three digits.
func thousands(n int64) string {
	s := i64(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// pageValues are the query parameters of a page list's filters and sort.
func pageValues(q store.PageQuery) url.Values {
	v := url.Values{}
	if q.Status != "" {
		v.Set("status", q.Status)
	}
	if q.ContentType != "" {
		v.Set("ctype", q.ContentType)
	}
	if q.Sort != "" {
		v.Set("sort", q.Sort)
	}
	if q.Desc {
		v.Set("desc", "1")
	}
	return v
}

// sortCol is the page list's effective sort column (the store sorts by URL by default).
func sortCol(q store.PageQuery) string {
	if q.Sort == "" {
		return store.SortURL
	}
	return q.Sort
}

// sortHref is a page-list column header's link: it sorts by col, ascending, or flips the
// direction when col is already the sort. It keeps the filters and starts from the first page
// (a keyset cursor is only valid for the sort it came from).
func sortHref(id int64, q store.PageQuery, col string) templ.SafeURL {
	q.Desc = sortCol(q) == col && !q.Desc
	q.Sort = col
	return templ.SafeURL(targetURL(id, q, ""))
}

// ariaSort is a column header's aria-sort value: "ascending" or "descending" for the sort
// column, empty (no attribute) for the others, as ARIA wants it on one header at a time.
func ariaSort(q store.PageQuery, col string) string {
	switch {
	case sortCol(q) != col:
		return ""
	case q.Desc:
		return "descending"
	}
	return "ascending"
}

func searchURL(q string, target int64, after string) string {
	v := url.Values{"q": {q}}
	if target > 0 {
		v.Set("target", i64(target))
	}
	if after != "" {
		v.Set("after", after)
	}
	return "/search?" + v.Encode()
}

// filterValues are the query parameters of a retries or dead-letters filter.
func filterValues(f store.URLFilter) url.Values {
	v := url.Values{}
	if f.TargetID > 0 {
		v.Set("target", i64(f.TargetID))
	}
	if f.Host != "" {
		v.Set("host", f.Host)
	}
	if f.ErrorClass != "" {
		v.Set("class", f.ErrorClass)
	}
	return v
}

func retriesURL(f store.URLFilter, key, cursor string) string {
	v := filterValues(f)
	v.Set(key, cursor)
	return "/retries?" + v.Encode()
}

// purgeHref is the confirmation page of a purge of the dead letters matching f.
func purgeHref(f store.URLFilter) templ.SafeURL {
	v := filterValues(f)
	if len(v) == 0 {
		return "/dead-letters/purge"
	}
	return templ.SafeURL("/dead-letters/purge?" + v.Encode())
}

// timeRef renders times relative to one instant, so a page is consistent. In the page a time
// is a <time data-rel> element (relTime in layout.templ) whose text web/static/reltime.js
// keeps current with the same wording, and whose title it sets to the absolute time in the
// browser's time zone.
type timeRef struct{ now time.Time }

// rel says how long ago t was, or in how long it comes: "now", "25s ago", "in 1m05s",
// "3h07m ago"; two days or more away, the date and time in UTC; "—" for a zero time.
func (r timeRef) rel(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := t.Sub(r.now)
	abs := d.Abs()
	switch {
	case abs < time.Second:
		return "now"
	case abs >= 48*time.Hour:
		return t.UTC().Format("2006-01-02 15:04 UTC")
	case d < 0:
		return span(abs) + " ago"
	}
	return "in " + span(abs)
}

// span writes a duration the way the dashboard does everywhere, whole seconds down: "0s",
// "45s", "1m25s", "2h05m", "3d04h".
func span(d time.Duration) string {
	s := int64(max(d, 0) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 48*3600:
		return fmt.Sprintf("%dh%02dm", s/3600, s/60%60)
	}
	return fmt.Sprintf("%dd%02dh", s/86400, s/3600%24)
}

// isoUTC is t in ISO 8601 (RFC 3339), in UTC, to the second: a <time> element's datetime,
// and its title until the script replaces it with the browser's local time.
func isoUTC(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// isoDuration is d as an ISO 8601 duration, whole seconds ("PT1H2M5S"): the datetime of a
// <time> element that holds a duration.
func isoDuration(d time.Duration) string {
	s := int64(max(d, 0) / time.Second)
	out := "PT"
	if h := s / 3600; h > 0 {
		out += strconv.FormatInt(h, 10) + "H"
	}
	if m := s / 60 % 60; m > 0 {
		out += strconv.FormatInt(m, 10) + "M"
	}
	return out + strconv.FormatInt(s%60, 10) + "S"
}

// chart is a server-rendered SVG line chart of pages/s and errors/s.
type chart struct {
	W, H                 int
	Label                string
	Pages, Errors        string // polyline points
	Grid                 []gridLine
	LastPages, MaxPages  float64
	LastErrors, MaxError float64
	Base                 float64 // y of zero, above the time axis labels
}

type gridLine struct {
	Y     float64
	Label string
}

func (c chart) viewBox() string { return fmt.Sprintf("0 0 %d %d", c.W, c.H) }

// buildChart scales rate points (per bucket) into SVG coordinates. A last bucket that is
// still filling (it ends after now) is left out, so the line does not dive at the right edge.
func buildChart(pts []store.RatePoint, bucket time.Duration, now time.Time) chart {
	c := chart{W: 1200, H: 220, Label: "Pages and errors per second over the last 15 minutes"}
	if n := len(pts); n > 1 && pts[n-1].At.Add(bucket).After(now) {
		pts = pts[:n-1]
	}
	secs := bucket.Seconds()
	if secs <= 0 {
		secs = 1
	}
	peak := 0.0
	for _, p := range pts {
		peak = max(peak, float64(p.Pages)/secs)
		c.MaxError = max(c.MaxError, float64(p.Errors)/secs)
	}
	c.MaxPages = peak
	top := niceCeil(max(peak, c.MaxError, 1))
	const padTop, padBottom = 16.0, 18.0
	h := float64(c.H) - padTop - padBottom
	y := func(v float64) float64 { return padTop + h - v/top*h }
	var pb, eb strings.Builder
	n := len(pts)
	for i, p := range pts {
		x := 0.0
		if n > 1 {
			x = float64(i) / float64(n-1) * float64(c.W)
		}
		fmt.Fprintf(&pb, "%.1f,%.1f ", x, y(float64(p.Pages)/secs))
		fmt.Fprintf(&eb, "%.1f,%.1f ", x, y(float64(p.Errors)/secs))
	}
	c.Pages, c.Errors = strings.TrimSpace(pb.String()), strings.TrimSpace(eb.String())
	if n > 0 {
		c.LastPages = float64(pts[n-1].Pages) / secs
		c.LastErrors = float64(pts[n-1].Errors) / secs
	}
	for _, f := range []float64{1, 0.5, 0} {
		c.Grid = append(c.Grid, gridLine{Y: y(top * f), Label: strconv.FormatFloat(top*f, 'g', 3, 64) + "/s"})
	}
	c.Base = y(0)
	return c
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// runTimes is what a target's page says about its crawl's time: when it started, how long it
// has been running (or ran), its recent rate and when it should finish.
type runTimes struct {
	Started time.Time
	// Finished is set once the target is done or cancelled; Took is then the duration.
	Finished time.Time
	Took     time.Duration
	// Rate is the target's fetches per second over store.RateWindow.
	Rate float64
	// Left is the number of URLs still to fetch (queued or in flight); ETA is when they should
	// be fetched at Rate, zero when that cannot be estimated, and Unknown then says why.
	Left    int64
	ETA     time.Time
	Unknown string
	// Capped: the target holds max_pages URLs, so no more are discovered and the ETA is not a
	// lower bound.
	Capped bool
}

// Running and Finished are the two shapes of runTimes the page shows: a running (or paused)
// crawl with its elapsed time, rate and ETA; a finished one with its finish and duration.
func (r runTimes) Running() bool   { return r.Finished.IsZero() }
func (r runTimes) Estimated() bool { return !r.ETA.IsZero() }

// maxETA is the furthest ETA the page gives; beyond, it says "unknown".
const maxETA = 365 * 24 * time.Hour

// targetTimes works out a target's run times at now. The start is the target's creation: the
// store keeps no start of a re-crawl (docs/adr/0055-live-dashboard.md). The ETA divides the
// URLs left by the rate of the last minute; it is unknown while the target is paused or has
// fetched nothing for a minute.
func targetTimes(t store.TargetSummary, now time.Time) runTimes {
	r := runTimes{Started: t.CreatedAt, Rate: t.PagesPerSec, Left: t.Pending(),
		Capped: t.MaxPages > 0 && t.URLsTotal >= int64(t.MaxPages)}
	switch {
	case t.FinishedAt != nil && (t.State == store.TargetDone || t.State == store.TargetCancelled):
		r.Finished = *t.FinishedAt
		r.Took = r.Finished.Sub(r.Started)
	case t.State == store.TargetPaused:
		r.Unknown = "unknown: paused"
	case t.State != store.TargetActive:
		r.Unknown = "unknown"
	case r.Left <= 0:
		r.ETA = now // the last fetches are being applied
	case r.Rate <= 0:
		r.Unknown = "unknown: nothing fetched in the last minute"
	case float64(r.Left)/r.Rate > maxETA.Seconds():
		r.Unknown = "unknown: more than a year at this rate"
	default:
		r.ETA = now.Add(time.Duration(float64(r.Left) / r.Rate * float64(time.Second)))
	}
	return r
}
