package web

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/deadletter"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
)

// The JSON API's bodies are a contract (README.md documents them): field names, omitempty,
// the number and time formats, and null against [] must not change when the store's structs
// do. shapeStore answers every read with a fixed value: id or target 1 gets a row with every
// field set, id or target 2 the zero value (nil slices and pointers, empty strings).
type shapeStore struct {
	Store // nil: a method the golden tests do not expect panics
}

// shapeTime has nanoseconds and a zone, so a change of time format shows.
var shapeTime = time.Date(2026, 1, 2, 3, 4, 5, 600700800, time.FixedZone("", 3600))

func shapeTarget() store.Target {
	return store.Target{ID: 1, Spec: target.Spec{Name: "docs", SeedURL: "https://a.example/", Scope: "prefix", ScopePrefix: "https://a.example/docs/",
		MaxDepth: 3, MaxPages: 100, PerHostRPS: 0.5, MaxAttempts: 4, SearchLanguage: "english"}, State: store.TargetActive,
		URLsTotal: 10, URLsDone: 6, URLsFailed: 1, CreatedAt: shapeTime, FinishedAt: ptr(shapeTime)}
}

func (shapeStore) Target(_ context.Context, id int64) (store.Target, error) {
	t := shapeTarget()
	t.ID = id
	return t, nil
}

func (shapeStore) Overview(context.Context) (store.Overview, error) {
	return store.Overview{Queued: 1, Dispatched: 2, Retrying: 3, Failed: 4, Done: 5, Discovered: 15, SearchBacklog: 6,
		Targets: map[string]int64{"active": 1, "done": 2},
		Active:  []store.TargetSummary{{Target: shapeTarget(), Dispatched: 2, Retrying: 1, Cancelled: 0, PagesPerSec: 1.25, ErrorsPerSec: 0.1}}}, nil
}

func (shapeStore) Throughput(_ context.Context, target int64, _, _ time.Duration) ([]store.RatePoint, error) {
	if target == 2 {
		return nil, nil
	}
	return []store.RatePoint{{At: shapeTime, Pages: 7, Errors: 1}, {At: shapeTime.Add(time.Second)}}, nil
}

func (shapeStore) Search(_ context.Context, q store.SearchQuery) (store.SearchResults, error) {
	if q.TargetID == 2 {
		return store.SearchResults{}, nil
	}
	return store.SearchResults{Hits: []store.SearchHit{
		{URLID: 1, TargetID: 1, URL: "https://a.example/", Title: "A <b>", Status: 200, FetchedAt: shapeTime,
			Snippet: []store.SnippetPart{{Text: "before "}, {Text: "word", Hit: true}}},
		{URLID: 2, TargetID: 1, URL: "https://a.example/2"},
	}, NextCursor: "c1", Unindexed: 3, Total: 1000, TotalCapped: true}, nil
}

func (shapeStore) PageDetail(_ context.Context, id int64) (store.PageDetail, error) {
	if id == 2 {
		return store.PageDetail{}, nil
	}
	return store.PageDetail{URLID: 1, TargetID: 1, URL: "https://a.example/", Host: "a.example", Depth: 1, State: "done",
		Attempts: 2, NextAttemptAt: shapeTime, LastError: "timeout", ErrorClass: "timeout", DiscoveredAt: shapeTime,
		FetchedAt: ptr(shapeTime),
		Page: &store.PageInfo{FinalURL: "https://a.example/x", Status: 200, ContentType: "text/html", Title: "A",
			Size: 123, Truncated: true, DurationMS: 45, LinkCount: 2, ContentHash: "abc", ETag: `"e"`,
			LastModified: "Mon, 02 Jan 2006 15:04:05 GMT", FetchedAt: shapeTime, StoredAt: shapeTime},
		Outlinks:    []store.LinkRow{{URLID: 3, URL: "https://a.example/3", State: "done", Status: 404, Title: "three"}, {URLID: 4, URL: "https://a.example/4", State: "queued"}},
		Links:       []string{"https://a.example/3", "/4"},
		Inlinks:     []store.LinkRow{},
		MoreInlinks: true,
		History:     shapeFetches(),
	}, nil
}

func shapeFetches() []store.Fetch {
	return []store.Fetch{
		{FetchedAt: shapeTime, Status: 200, DurationMS: 45, Size: 123, ContentHash: "abc", Changed: true},
		{FetchedAt: shapeTime, DurationMS: 1000, ErrorClass: "timeout", Error: "read timeout"},
	}
}

func (shapeStore) FetchHistory(_ context.Context, id int64, _ int) ([]store.Fetch, error) {
	if id == 2 {
		return nil, nil
	}
	return shapeFetches(), nil
}

func shapeURLs(f store.URLFilter) (store.URLList, error) {
	if f.TargetID == 2 {
		return store.URLList{}, nil
	}
	return store.URLList{Rows: []store.URLRowInfo{
		{URLID: 1, TargetID: 1, URL: "https://a.example/", Host: "a.example", Attempts: 2, NextAttemptAt: shapeTime,
			LastStatus: 503, LastError: "unavailable", ErrorClass: "http_503", FetchedAt: ptr(shapeTime)},
		{URLID: 2, TargetID: 1, URL: "https://a.example/2", Host: "a.example", NextAttemptAt: shapeTime},
	}, NextCursor: "c2"}, nil
}

func (shapeStore) Retrying(_ context.Context, f store.URLFilter) (store.URLList, error) {
	return shapeURLs(f)
}
func (shapeStore) Failed(_ context.Context, f store.URLFilter) (store.URLList, error) {
	return shapeURLs(f)
}

func (shapeStore) TargetHosts(_ context.Context, id int64, _ string, _ int) (store.HostList, error) {
	if id == 2 {
		return store.HostList{}, nil
	}
	return store.HostList{Rows: []store.HostState{
		{Host: "a.example", NextFetchAt: shapeTime, MinIntervalMS: 1000, CrawlDelayMS: 2000, BackoffUntil: ptr(shapeTime),
			RobotsStatus: ptr(200), RobotsFetchedAt: ptr(shapeTime), InFlight: 1, Fetches: 9, Errors: 2},
		{Host: "b.example", NextFetchAt: shapeTime},
	}, NextCursor: "c3"}, nil
}

func (shapeStore) TargetErrors(_ context.Context, id int64, _ int) ([]store.ErrorGroup, error) {
	if id == 2 {
		return nil, nil
	}
	return []store.ErrorGroup{
		{Class: "http_404", Count: 3, SampleURLID: 5, SampleURL: "https://a.example/5", SampleError: "not found", SampleStatus: 404, LastSeen: shapeTime},
		{Class: "timeout", Count: 1, SampleURLID: 6, SampleURL: "https://a.example/6", LastSeen: shapeTime},
	}, nil
}

func (shapeStore) Pages(_ context.Context, q store.PageQuery) (store.PageList, error) {
	if q.TargetID == 2 {
		return store.PageList{}, nil
	}
	return store.PageList{Rows: []store.PageRow{
		{URLID: 1, TargetID: 1, URL: "https://a.example/", Status: 200, ContentType: "text/html", Title: "A", Size: 123, DurationMS: 45, FetchedAt: shapeTime},
		{URLID: 2, TargetID: 1, URL: "https://a.example/2"},
	}, NextCursor: "c4"}, nil
}

func (shapeStore) ExportPages(_ context.Context, id int64, _ bool, fn func(store.ExportRow) error) error {
	if id == 2 {
		return nil
	}
	for _, r := range []store.ExportRow{
		{URLID: 1, URL: "https://a.example/", FinalURL: "https://a.example/x", Depth: 1, Status: 200, ContentType: "text/html",
			Title: "A", Size: 123, Truncated: true, DurationMS: 45, LinkCount: 2, ContentHash: "abc", ETag: `"e"`,
			LastModified: "Mon, 02 Jan 2006 15:04:05 GMT", FetchedAt: shapeTime, Text: "body <text>"},
		{URLID: 2},
	} {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

type shapeQueues struct{}

func (shapeQueues) QueueStats(context.Context) ([]pipeline.QueueStat, error) {
	return []pipeline.QueueStat{
		{Name: "trawl.crawl.jobs", Role: "crawl.jobs", Ready: 5, Unacked: 2, Consumers: 1, Source: "management"},
		{Name: "trawl.pages", Role: "pages", Unacked: -1, Source: "amqp"},
	}, nil
}

type shapeDeadLetters struct{ DeadLetters }

func (shapeDeadLetters) List(_ context.Context, f store.DeadLetterFilter) ([]store.DeadLetter, error) {
	if f.TargetID == 2 {
		return nil, nil
	}
	return []store.DeadLetter{
		{ID: 1, Reason: "rejected", OriginalQueue: "q", Exchange: "x", RoutingKey: "job", MessageType: "crawl_job",
			TargetID: ptr(int64(1)), Host: "a.example", URL: "https://a.example/", ErrorClass: "poison", Summary: "s",
			Size: 10, Count: 2, Requeues: 1, DeadAt: shapeTime, MessageID: "m1", ContentType: "application/json",
			Headers: json.RawMessage(`{"x-death":[{"count":2}]}`), Body: []byte("secret body"), Fingerprint: "fp"},
		{ID: 2, DeadAt: shapeTime},
	}, nil
}

func (shapeDeadLetters) RequeueAll(context.Context, store.DeadLetterFilter) (deadletter.RequeueCounts, error) {
	return deadletter.RequeueCounts{Requeued: 2, Failed: 1, Skipped: 3}, nil
}

// apiShapes are the bodies shapeStore's values give, by request: golden, so a change shows.
var apiShapes = []struct{ path, want string }{
	{"/api/overview", `{"active":[{"id":1,"name":"docs","seed_url":"https://a.example/","scope":"prefix","scope_prefix":"https://a.example/docs/","max_depth":3,"max_pages":100,"per_host_rps":0.5,"max_attempts":4,"state":"running","discovered":10,"fetched":6,"failed":1,"pending":3,"created_at":"2026-01-02T03:04:05.6007008+01:00","finished_at":"2026-01-02T03:04:05.6007008+01:00","sitemaps":false,"search_language":"english","dispatched":2,"retrying":1,"cancelled":0,"progress":0.7,"pages_per_sec":1.25,"errors_per_sec":0.1}],"discovered":15,"dispatched":2,"done":5,"failed":4,"queued":1,"queues":[{"name":"trawl.crawl.jobs","role":"crawl.jobs","ready":5,"unacked":2,"consumers":1,"source":"management"},{"name":"trawl.pages","role":"pages","ready":0,"unacked":-1,"consumers":0,"source":"amqp"}],"retrying":3,"search_backlog":6,"targets":{"active":1,"done":2},"workers":0}`},
	{"/api/queues", `{"queues":[{"name":"trawl.crawl.jobs","role":"crawl.jobs","ready":5,"unacked":2,"consumers":1,"source":"management"},{"name":"trawl.pages","role":"pages","ready":0,"unacked":-1,"consumers":0,"source":"amqp"}]}`},
	{"/api/throughput?target=1&window=1h&bucket=1m", `{"bucket_seconds":60,"points":[{"at":"2026-01-02T03:04:05.6007008+01:00","pages":7,"errors":1},{"at":"2026-01-02T03:04:06.6007008+01:00","pages":0,"errors":0}]}`},
	{"/api/throughput?target=2", `{"bucket_seconds":15,"points":null}`},
	{"/api/search?q=word", `{"hits":[{"url_id":1,"target_id":1,"url":"https://a.example/","title":"A \u003cb\u003e","status":200,"fetched_at":"2026-01-02T03:04:05.6007008+01:00","snippet":[{"text":"before "},{"text":"word","hit":true}]},{"url_id":2,"target_id":1,"url":"https://a.example/2","title":"","status":0,"fetched_at":"0001-01-01T00:00:00Z","snippet":null}],"next_cursor":"c1","unindexed":3,"total":1000,"total_capped":true}`},
	{"/api/search?q=word&target=2", `{"hits":null,"unindexed":0,"total":0}`},
	{"/api/pages/1", `{"url_id":1,"target_id":1,"url":"https://a.example/","host":"a.example","depth":1,"state":"done","attempts":2,"next_attempt_at":"2026-01-02T03:04:05.6007008+01:00","last_error":"timeout","error_class":"timeout","discovered_at":"2026-01-02T03:04:05.6007008+01:00","fetched_at":"2026-01-02T03:04:05.6007008+01:00","page":{"final_url":"https://a.example/x","status":200,"content_type":"text/html","title":"A","size":123,"truncated":true,"duration_ms":45,"link_count":2,"content_hash":"abc","etag":"\"e\"","last_modified":"2006-01-02T15:04:05Z","fetched_at":"2026-01-02T03:04:05.6007008+01:00","stored_at":"2026-01-02T03:04:05.6007008+01:00"},"outlinks":[{"url_id":3,"url":"https://a.example/3","state":"done","status":404,"title":"three"},{"url_id":4,"url":"https://a.example/4","state":"queued"}],"links":["https://a.example/3","/4"],"inlinks":[],"more_inlinks":true,"history":[{"fetched_at":"2026-01-02T03:04:05.6007008+01:00","status":200,"duration_ms":45,"size":123,"content_hash":"abc","changed":true},{"fetched_at":"2026-01-02T03:04:05.6007008+01:00","duration_ms":1000,"size":0,"changed":false,"error_class":"timeout","error":"read timeout"}]}`},
	{"/api/pages/2", `{"url_id":0,"target_id":0,"url":"","host":"","depth":0,"state":"","attempts":0,"next_attempt_at":"0001-01-01T00:00:00Z","discovered_at":"0001-01-01T00:00:00Z","outlinks":null,"links":null,"inlinks":null,"history":null}`},
	{"/api/pages/1/history", `{"history":[{"fetched_at":"2026-01-02T03:04:05.6007008+01:00","status":200,"duration_ms":45,"size":123,"content_hash":"abc","changed":true},{"fetched_at":"2026-01-02T03:04:05.6007008+01:00","duration_ms":1000,"size":0,"changed":false,"error_class":"timeout","error":"read timeout"}]}`},
	{"/api/pages/2/history", `{"history":null}`},
	{"/api/retries", `{"rows":[{"url_id":1,"target_id":1,"url":"https://a.example/","host":"a.example","attempts":2,"next_attempt_at":"2026-01-02T03:04:05.6007008+01:00","last_status":503,"last_error":"unavailable","error_class":"http_503","fetched_at":"2026-01-02T03:04:05.6007008+01:00"},{"url_id":2,"target_id":1,"url":"https://a.example/2","host":"a.example","attempts":0,"next_attempt_at":"2026-01-02T03:04:05.6007008+01:00"}],"next_cursor":"c2"}`},
	{"/api/retries?target=2", `{"rows":null}`},
	{"/api/failed", `{"rows":[{"url_id":1,"target_id":1,"url":"https://a.example/","host":"a.example","attempts":2,"next_attempt_at":"2026-01-02T03:04:05.6007008+01:00","last_status":503,"last_error":"unavailable","error_class":"http_503","fetched_at":"2026-01-02T03:04:05.6007008+01:00"},{"url_id":2,"target_id":1,"url":"https://a.example/2","host":"a.example","attempts":0,"next_attempt_at":"2026-01-02T03:04:05.6007008+01:00"}],"next_cursor":"c2"}`},
	{"/api/failed?target=2", `{"rows":null}`},
	{"/api/dead-letters", `{"dead_letters":[{"id":1,"reason":"rejected","original_queue":"q","exchange":"x","routing_key":"job","message_type":"crawl_job","target_id":1,"host":"a.example","url":"https://a.example/","error_class":"poison","summary":"s","size":10,"count":2,"requeues":1,"dead_at":"2026-01-02T03:04:05.6007008+01:00","message_id":"m1","content_type":"application/json","headers":{"x-death":[{"count":2}]}},{"id":2,"reason":"","original_queue":"","exchange":"","routing_key":"","message_type":"","summary":"","size":0,"count":0,"requeues":0,"dead_at":"2026-01-02T03:04:05.6007008+01:00"}]}`},
	{"/api/dead-letters?target=2", `{"dead_letters":null}`},
	{"/api/targets/1/hosts", `{"rows":[{"host":"a.example","next_fetch_at":"2026-01-02T03:04:05.6007008+01:00","min_interval_ms":1000,"crawl_delay_ms":2000,"backoff_until":"2026-01-02T03:04:05.6007008+01:00","robots_status":200,"robots_fetched_at":"2026-01-02T03:04:05.6007008+01:00","in_flight":1,"fetches":9,"errors":2},{"host":"b.example","next_fetch_at":"2026-01-02T03:04:05.6007008+01:00","min_interval_ms":0,"crawl_delay_ms":0,"in_flight":0,"fetches":0,"errors":0}],"next_cursor":"c3"}`},
	{"/api/targets/2/hosts", `{"rows":null}`},
	{"/api/targets/1/errors", `{"errors":[{"class":"http_404","count":3,"sample_url_id":5,"sample_url":"https://a.example/5","sample_error":"not found","sample_status":404,"last_seen":"2026-01-02T03:04:05.6007008+01:00"},{"class":"timeout","count":1,"sample_url_id":6,"sample_url":"https://a.example/6","last_seen":"2026-01-02T03:04:05.6007008+01:00"}]}`},
	{"/api/targets/2/errors", `{"errors":null}`},
	{"/api/targets/1/pages", `{"rows":[{"url_id":1,"target_id":1,"url":"https://a.example/","status":200,"content_type":"text/html","title":"A","size":123,"duration_ms":45,"fetched_at":"2026-01-02T03:04:05.6007008+01:00"},{"url_id":2,"target_id":1,"url":"https://a.example/2","status":0,"content_type":"","title":"","size":0,"duration_ms":0,"fetched_at":"0001-01-01T00:00:00Z"}],"next_cursor":"c4"}`},
	{"/api/targets/2/pages", `{"rows":null}`},
	{"/api/targets/1/export.jsonl", `{"url_id":1,"url":"https://a.example/","final_url":"https://a.example/x","depth":1,"status":200,"content_type":"text/html","title":"A","size":123,"truncated":true,"duration_ms":45,"link_count":2,"content_hash":"abc","etag":"\"e\"","last_modified":"2006-01-02T15:04:05Z","fetched_at":"2026-01-02T03:04:05.6007008+01:00","text":"body \u003ctext\u003e"}
{"url_id":2,"url":"","final_url":"","depth":0,"status":0,"content_type":"","title":"","size":0,"truncated":false,"duration_ms":0,"link_count":0,"content_hash":"","etag":"","last_modified":"","fetched_at":"0001-01-01T00:00:00Z","text":""}`},
	{"/api/targets/2/export.jsonl", ``},
}

func apiShape(t *testing.T, path string) string {
	t.Helper()
	for _, s := range apiShapes {
		if s.path == path {
			if s.want == "" {
				return ""
			}
			return s.want + "\n"
		}
	}
	t.Fatalf("no golden body for %s", path)
	return ""
}

// TestAPIShapes pins every JSON read endpoint's body byte for byte, for a full row and for an
// empty answer: a renamed field, a lost omitempty, a new time format or a null that becomes []
// fails here.
func TestAPIShapes(t *testing.T) {
	t.Parallel()
	ts := serve(t, shapeStore{}, "", func(s *Server) {
		s.Queues = shapeQueues{}
		s.DeadLetters = shapeDeadLetters{}
	})
	c := newClient(t, ts.URL)
	for _, tc := range apiShapes {
		resp, body := c.get(tc.path)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d %s", tc.path, resp.StatusCode, body)
			continue
		}
		if want := apiShape(t, tc.path); want != body {
			t.Errorf("GET %s body (-want +got):\n%s", tc.path, cmp.Diff(want, body))
		}
	}
	resp, body := c.do(http.MethodPost, "/api/dead-letters/requeue-all", "", nil)
	if want := `{"failed":1,"requeued":2,"skipped":3}` + "\n"; resp.StatusCode != http.StatusOK || body != want {
		t.Errorf("POST /api/dead-letters/requeue-all = %d %s, want 200 %s", resp.StatusCode, body, want)
	}
}

// TestViewModelsKeepTheShapes: the target listings' view models (hosts, error groups, pages,
// export rows) encode the store's values to exactly the bodies their endpoints answer.
func TestViewModelsKeepTheShapes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var st shapeStore
	encode := func(vs ...any) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		for _, v := range vs {
			if err := enc.Encode(v); err != nil {
				t.Fatal(err)
			}
		}
		return b.String()
	}
	for _, id := range []int64{1, 2} {
		hl, _ := st.TargetHosts(ctx, id, "", 100)
		groups, _ := st.TargetErrors(ctx, id, 50)
		pl, _ := st.Pages(ctx, store.PageQuery{TargetID: id})
		var rows []any
		_ = st.ExportPages(ctx, id, true, func(r store.ExportRow) error {
			rows = append(rows, toExportRowJSON(r))
			return nil
		})
		base := "/api/targets/" + i64(id)
		for path, got := range map[string]string{
			base + "/hosts":        encode(toHostListJSON(hl)),
			base + "/errors":       encode(map[string]any{"errors": mapJSON(groups, toErrorGroupJSON)}),
			base + "/pages":        encode(toPageListJSON(pl)),
			base + "/export.jsonl": encode(rows...),
		} {
			if want := apiShape(t, path); got != want {
				t.Errorf("%s: view model body (-want +got):\n%s", path, cmp.Diff(want, got))
			}
		}
	}
}

// TestMessageShapesKeepTheirJSON checks that the re-crawl reply, which the API used to encode
// straight from the message type, keeps the same body through web's own type, and pins the
// workers list's body: it dropped the heartbeat's envelope (type, v and a message id that was
// not the worker's) and gained the worker's memory and rate (issue #19). Every field set, then
// none.
func TestMessageShapesKeepTheirJSON(t *testing.T) {
	t.Parallel()
	env := message.Envelope{Type: message.TypeHeartbeat, V: 1, ID: "m1", TS: shapeTime}
	hb := message.Heartbeat{Envelope: env, WorkerID: "w1", Kind: "crawler", Host: "h", Version: "v1", Concurrency: 4,
		InFlight: 2, Processed: 9, StartedAt: shapeTime, IntervalMS: 5000, Scheduler: true, RSSBytes: 52428800}
	reply := message.RecrawlReply{Envelope: env, RequestID: "r1", URLID: 3, Worker: "w1", Status: 200, DurationMS: 12,
		Changed: true, Error: "e", Fetched: true, ContentHash: "abc"}
	for _, tt := range []struct {
		name string
		want string
		got  any
	}{
		{"worker", `{"ts":"2026-01-02T03:04:05.6007008+01:00","worker_id":"w1","kind":"crawler","host":"h","version":"v1",` +
			`"concurrency":4,"in_flight":2,"processed":9,"started_at":"2026-01-02T03:04:05.6007008+01:00","interval_ms":5000,` +
			`"scheduler":true,"rss_bytes":52428800,"pages_per_sec":2.5,"last_seen":"2026-01-02T03:04:05.6007008+01:00"}`,
			toWorkerJSON(WorkerInfo{Heartbeat: hb, LastSeen: shapeTime, Rate: 2.5, HasRate: true})},
		{"empty worker", `{"ts":"0001-01-01T00:00:00Z","worker_id":"","kind":"","host":"","version":"","concurrency":0,` +
			`"in_flight":0,"processed":0,"started_at":"0001-01-01T00:00:00Z","interval_ms":0,"last_seen":"0001-01-01T00:00:00Z"}`,
			toWorkerJSON(WorkerInfo{})},
		{"idle worker", `{"ts":"0001-01-01T00:00:00Z","worker_id":"","kind":"","host":"","version":"","concurrency":0,` +
			`"in_flight":0,"processed":0,"started_at":"0001-01-01T00:00:00Z","interval_ms":0,"pages_per_sec":0,"last_seen":"0001-01-01T00:00:00Z"}`,
			toWorkerJSON(WorkerInfo{HasRate: true})},
		{"reply", mustJSON(t, reply), toRecrawlReplyJSON(reply)},
		{"empty reply", mustJSON(t, message.RecrawlReply{}), toRecrawlReplyJSON(message.RecrawlReply{})},
	} {
		got, err := json.Marshal(tt.got)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, string(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
