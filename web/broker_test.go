package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/deadletter"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/recrawl"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

// TestDeadLetterActions requeues and purges mirrored dead letters through the UI, with the real
// dead-letter service, broker and database.
func TestDeadLetterActions(t *testing.T) {
	t.Parallel()
	topo, raw := testenv.Broker(t)
	st, _ := testenv.Store(t)
	sender := pipeline.NewPublisher(testenv.Dial(t, "web-dl"), testenv.Logger(t))
	t.Cleanup(func() { _ = sender.Close() })
	ts := serve(t, st, "", func(s *Server) { s.DeadLetters = &deadletter.Service{Store: st, Publisher: sender} })
	c := newClient(t, ts.URL)

	tg, err := st.CreateTarget(t.Context(), target.Spec{Name: "x", SeedURL: "http://a.test/", Scope: "host", MaxDepth: 1, MaxPages: 10, PerHostRPS: 1, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	insert := func(fp, host, summary string) int64 {
		id, _, err := st.InsertDeadLetter(t.Context(), store.DeadLetter{
			Reason: "rejected", OriginalQueue: topo.CrawlQueue(), Exchange: topo.CrawlExchange(), RoutingKey: pipeline.KeyJob,
			MessageType: message.TypeCrawlJob, TargetID: &tg.ID, Host: host, URL: "http://" + host + "/", Summary: summary,
			Body: []byte(`{"fp":"` + fp + `"}`), Count: 1, DeadAt: time.Now(), Fingerprint: fp, Headers: json.RawMessage(`{}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	one := insert("one", "a.test", `<script>alert(1)</script>`)
	insert("two", "a.test", "two")
	insert("three", "b.test", "three")

	_, body := c.get("/retries")
	if strings.Contains(body, "<script>alert(1)") || !strings.Contains(body, "&lt;script&gt;alert(1)") {
		t.Errorf("the dead letter summary is not escaped")
	}
	if n := strings.Count(body, `class="requeue"`); n != 3 {
		t.Fatalf("%d requeue buttons, want 3", n)
	}

	// Requeue one row with htmx: it goes back to its original queue and leaves the list.
	resp, frag := c.postForm("/dead-letters/"+i64(one)+"/requeue", url.Values{}, csrfHeader, c.csrf, "HX-Request", "true")
	if resp.StatusCode != http.StatusOK || !strings.Contains(frag, "requeued") {
		t.Fatalf("requeue = %d %s", resp.StatusCode, frag)
	}
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, "the message back in its queue", func() bool {
		return testenv.QueueDepth(t, raw, topo.CrawlQueue()) == 1
	})
	if resp, _ := c.postForm("/dead-letters/"+i64(one)+"/requeue", url.Values{csrfFormField: {c.csrf}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("requeue of a requeued row = %d, want 404", resp.StatusCode)
	}

	// Purge filtered by host asks first on a page of its own (no JavaScript needed), then removes
	// only b.test's row when that page's form is submitted as a browser would.
	_, body = c.get("/retries?host=b.test")
	m := purgeLinkRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no purge link on the filtered retries page")
	}
	if strings.Contains(body, "hx-confirm") {
		t.Errorf("purge still relies on a JavaScript confirm")
	}
	resp, body = c.get(strings.ReplaceAll(m[1], "&amp;", "&"))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "1 dead letter matching") || !strings.Contains(body, "<strong>b.test</strong>") {
		t.Fatalf("purge confirmation = %d:\n%s", resp.StatusCode, body)
	}
	if left, _ := st.DeadLetters(t.Context(), store.DeadLetterFilter{Limit: 10}); len(left) != 2 {
		t.Fatalf("asking to purge removed dead letters: %d left, want 2", len(left))
	}
	form := url.Values{}
	for _, in := range hiddenInputRe.FindAllStringSubmatch(confirmPurgeFormRe.FindString(body), -1) {
		form.Add(in[1], in[2])
	}
	if form.Get("host") != "b.test" || form.Get(csrfFormField) == "" {
		t.Fatalf("the confirmation form does not carry the filter and CSRF token: %v", form)
	}
	resp, _ = c.postForm("/dead-letters/purge", form)
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "msg=purged") || !strings.Contains(resp.Header.Get("Location"), "n=1") {
		t.Errorf("purge = %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	left, _ := st.DeadLetters(t.Context(), store.DeadLetterFilter{Limit: 10})
	if len(left) != 1 || left[0].Host != "a.test" {
		t.Fatalf("after purge: %+v, want a.test's second row", left)
	}

	// Requeue all for the target sends the rest.
	resp, _ = c.postForm("/dead-letters/requeue-all", url.Values{csrfFormField: {c.csrf}, "target": {i64(tg.ID)}})
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "n=1") {
		t.Errorf("requeue all = %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, "both messages back", func() bool {
		return testenv.QueueDepth(t, raw, topo.CrawlQueue()) == 2
	})
	_, body = c.get("/retries?msg=requeued&n=1")
	if !strings.Contains(body, "Requeued 1 dead letters") || !strings.Contains(body, `id="no-dead"`) {
		t.Errorf("the page does not confirm the requeue or still lists dead letters")
	}
}

// TestRequeueAllAnswersCounts: requeue-all, through the API and through the page, says how many
// dead letters went back and how many could not, and both the API and the page show how often a
// dead letter had been requeued before it died again.
func TestRequeueAllAnswersCounts(t *testing.T) {
	t.Parallel()
	topo, raw := testenv.Broker(t)
	st, _ := testenv.Store(t)
	sender := pipeline.NewPublisher(testenv.Dial(t, "web-dl-all"), testenv.Logger(t))
	t.Cleanup(func() { _ = sender.Close() })
	ts := serve(t, st, "", func(s *Server) { s.DeadLetters = &deadletter.Service{Store: st, Publisher: sender} })
	c := newClient(t, ts.URL)
	insert := func(fp string, origin bool, requeues int) {
		d := store.DeadLetter{Reason: "rejected", OriginalQueue: topo.CrawlQueue(), MessageType: message.TypeCrawlJob,
			Summary: fp, Body: []byte(`{"fp":"` + fp + `"}`), Count: 1, Requeues: requeues, DeadAt: time.Now(),
			Fingerprint: fp, Headers: json.RawMessage(`{}`)}
		if origin {
			d.Exchange, d.RoutingKey = topo.CrawlExchange(), pipeline.KeyJob
		}
		if _, _, err := st.InsertDeadLetter(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	insert("a", true, 0)
	insert("b", true, 3)
	insert("lost", false, 0)

	resp, body := c.get("/api/dead-letters")
	var list struct {
		DeadLetters []struct {
			Summary  string `json:"summary"`
			Requeues int    `json:"requeues"`
		} `json:"dead_letters"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/dead-letters = %d %s: %v", resp.StatusCode, body, err)
	}
	requeues := map[string]int{}
	for _, d := range list.DeadLetters {
		requeues[d.Summary] = d.Requeues
	}
	if diff := cmp.Diff(map[string]int{"a": 0, "b": 3, "lost": 0}, requeues); diff != "" {
		t.Errorf("requeues in the API (-want +got):\n%s", diff)
	}
	_, page := c.get("/retries")
	if cells := requeuesCellRe.FindAllStringSubmatch(page, -1); len(cells) != 3 || cells[1][1] != "3" {
		t.Errorf("requeue cells on the page = %q, want 3 with the second one 3", cells)
	}

	resp, body = c.do(http.MethodPost, "/api/dead-letters/requeue-all", "application/json", strings.NewReader(`{}`))
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("requeue-all = %d %s: %v", resp.StatusCode, body, err)
	}
	if got["requeued"] != 2.0 || got["failed"] != 1.0 || got["skipped"] != 0.0 || !strings.Contains(fmt.Sprint(got["error"]), "original exchange and routing key unknown") {
		t.Errorf("requeue-all answered %s, want 2 requeued, 1 failed, 0 skipped and why", body)
	}
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, "both messages back", func() bool {
		return testenv.QueueDepth(t, raw, topo.CrawlQueue()) == 2
	})

	// Through the page: the flash says what could not be requeued.
	resp, _ = c.postForm("/dead-letters/requeue-all", url.Values{csrfFormField: {c.csrf}})
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "n=0") || !strings.Contains(loc, "failed=1") {
		t.Fatalf("requeue all = %d → %s", resp.StatusCode, loc)
	}
	_, page = c.get(loc)
	if !strings.Contains(page, "Requeued 0 dead letters to their original queues. 1 could not be requeued and are still listed.") {
		t.Errorf("the page does not say that one dead letter could not be requeued")
	}
}

var requeuesCellRe = regexp.MustCompile(`<td class="num requeues">(\d+)</td>`)

var (
	purgeLinkRe        = regexp.MustCompile(`<a class="button danger" id="purge" href="([^"]+)"`)
	confirmPurgeFormRe = regexp.MustCompile(`(?s)<form method="post" action="/dead-letters/purge".*?</form>`)
	hiddenInputRe      = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)
)

// TestRecrawlTimeoutThenResendDoesNotFetchTwice: with no crawler listening, "Re-crawl now"
// says no crawler answered and offers to try again with the same request id; trying again
// sends nothing new.
func TestRecrawlTimeoutThenResendDoesNotFetchTwice(t *testing.T) {
	t.Parallel()
	topo, raw := testenv.Broker(t)
	st, dsn := testenv.Store(t)
	client := pipeline.NewRPCClient(testenv.Dial(t, "web-rpc"), topo, time.Minute, testenv.Logger(t))
	t.Cleanup(func() { _ = client.Close() })
	svc := &recrawl.Service{Store: st, Client: client, Timeout: time.Second, Log: testenv.Logger(t)}
	t.Cleanup(svc.Close)
	ts := serve(t, st, "", func(s *Server) { s.Recrawl = svc; s.RecrawlTimeout = time.Second })
	c := newClient(t, ts.URL)

	tg, err := st.CreateTarget(t.Context(), target.Spec{Name: "x", SeedURL: "http://a.test/", Scope: "host", MaxDepth: 1, MaxPages: 10, PerHostRPS: 1, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var urlID int64
	err = conn.QueryRow(ctx, `SELECT id FROM urls WHERE target_id = $1`, tg.ID).Scan(&urlID)
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}

	_, page := c.get("/pages/" + i64(urlID))
	if !strings.Contains(page, `id="recrawl-button"`) {
		t.Fatal("no re-crawl button")
	}
	const reqID = "web-test-request-1"
	for i := range 2 {
		resp, frag := c.postForm("/pages/"+i64(urlID)+"/recrawl", url.Values{"request_id": {reqID}}, csrfHeader, c.csrf, "HX-Request", "true")
		if resp.StatusCode != http.StatusOK || !strings.Contains(frag, "No crawler answered within 1s") {
			t.Fatalf("send %d = %d, want the timeout message:\n%s", i+1, resp.StatusCode, frag)
		}
		if !strings.Contains(frag, `name="request_id" value="`+reqID+`"`) || !strings.Contains(frag, "Try again") {
			t.Errorf("send %d: the retry form does not resend the same request id:\n%s", i+1, frag)
		}
	}
	// One request on the queue for two sends of one id: a crawler would fetch once.
	if n := testenv.QueueDepth(t, raw, topo.RecrawlQueue()); n != 1 {
		t.Errorf("%d requests queued for two sends of one id, want 1", n)
	}
	// The API says the same with 504.
	resp, body := c.do(http.MethodPost, "/api/pages/"+i64(urlID)+"/recrawl", "application/json", strings.NewReader(`{"request_id":"`+reqID+`"}`))
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(body, reqID) {
		t.Errorf("API resend = %d %s, want 504 naming the request", resp.StatusCode, body)
	}
	if resp, _ := c.postForm("/pages/"+i64(urlID)+"/recrawl", url.Values{"request_id": {"x"}}, csrfHeader, c.csrf); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a malformed request id = %d, want 400", resp.StatusCode)
	}
}

// TestWorkersFollowHeartbeats subscribes to a broker's heartbeats: a beating worker is listed,
// and its farewell heartbeat removes it at once.
func TestWorkersFollowHeartbeats(t *testing.T) {
	t.Parallel()
	topo, _ := testenv.Broker(t)
	log := testenv.Logger(t)
	w := NewWorkers(nil)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { w.Run(ctx, testenv.Dial(t, "web-hb"), topo, log) })
	defer func() { cancel(); wg.Wait() }()

	pub := pipeline.NewPublisher(testenv.Dial(t, "web-hb-pub"), log)
	defer pub.Close()
	hctx, stopBeats := context.WithCancel(ctx)
	wg.Go(func() {
		pipeline.RunHeartbeats(hctx, pub, topo, 50*time.Millisecond, log, func() message.Heartbeat {
			return message.Heartbeat{WorkerID: "crawler-test-1", Kind: "crawler", Host: "h", Concurrency: 4}
		})
	})
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "the worker listed", func() bool {
		ws := w.List()
		return len(ws) == 1 && ws[0].WorkerID == "crawler-test-1" && ws[0].Concurrency == 4
	})
	stopBeats()
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "the farewell to remove it", func() bool {
		return len(w.List()) == 0
	})
}
