package chaos

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/test/harness"
	"github.com/trawlhq/trawl/test/testenv"
)

// unindexableURL is a URL no page can be stored under: it is not the URL its result's URL id was
// leased for, so the processor refuses the result (store.ErrURLMismatch), and were it ever
// stored, its 6,000 random bytes (base64, so lz4 cannot shrink them) would be too large for the
// btree index on pages (target_id, url). The frontier never holds such a URL
// (crawlurl.MaxURLLength); only a forged result carries one.
func unindexableURL() string {
	b := make([]byte, 6000)
	_, _ = rand.Read(b)
	return "http://poison.invalid/" + base64.RawURLEncoding.EncodeToString(b)
}

// TestPoisonMessages publishes three kinds of poison onto the pages queue in the middle of a
// crawl — undecodable JSON, a valid result that always fails to persist, and an oversized
// message — and checks that each reaches the dead-letter queue with its x-death reason while
// the crawl finishes normally.
func TestPoisonMessages(t *testing.T) {
	t.Parallel()
	site := newSite(t, sitePages()/2, 0)
	sys := harness.NewSystem(t, redeliveryEnv...)
	workers := sys.StartAll(2, 1)
	r := startRun(t, "poison", sys, testenv.AMQPURL(), site)
	r.deadLetters = 3

	// The valid poison refers to a real queued URL of a paused target, so the processor really
	// tries to store it rather than discarding it as a stale duplicate.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	var targetID, urlID int64
	if err := r.db.QueryRow(ctx, `INSERT INTO targets (name, seed_url, max_depth, max_pages, state)
		VALUES ('poison', 'http://poison.invalid/', 1, 1, 'paused') RETURNING id`).Scan(&targetID); err != nil {
		t.Fatal(err)
	}
	if err := r.db.QueryRow(ctx, `INSERT INTO urls (target_id, url, host, depth)
		VALUES ($1, 'http://poison.invalid/', 'poison.invalid', 0) RETURNING id`, targetID).Scan(&urlID); err != nil {
		t.Fatal(err)
	}
	bomb, err := message.EncodeFetchResult(message.FetchResult{
		Envelope: message.NewEnvelope(message.TypeFetchResult), Kind: message.KindPage,
		URLID: urlID, TargetID: targetID, URL: unindexableURL(), Status: 200,
		ContentType: "text/html", Title: "bomb", Text: "never stored", StartedAt: time.Now().UTC(),
	})
	if err != nil {
		t.Fatal(err)
	}
	poison := map[string][]byte{
		"poison-json":      []byte(`{"type":"fetch.result","v":1,"id":`),
		"poison-persist":   bomb,
		"poison-oversized": []byte(`{"type":"fetch.result","v":1,"id":"x","text":"` + strings.Repeat("a", message.MaxMessageBytes) + `"}`),
	}
	wantReason := map[string]string{"poison-json": "rejected", "poison-persist": "delivery_limit", "poison-oversized": "rejected"}

	r.waitStored(len(site.ExpectedURLs()) / 5)
	ch := rawChannel(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for id, body := range poison {
		c, err := ch.PublishWithDeferredConfirmWithContext(ctx, sys.Topo.PagesExchange(), pipeline.KeyPage, true, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, MessageId: id, ContentType: "application/json", Body: body})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := c.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("publish %s: confirmed=%v err=%v", id, ok, err)
		}
	}
	faultEnd := time.Now()
	// The processors mirror the dead-letter queue into Postgres with each message's x-death
	// reason (package deadletter).
	got := map[string]string{}
	testenv.Eventually(t, 2*time.Minute, 100*time.Millisecond, "three poison messages dead-lettered", func() bool {
		rows, err := r.db.Query(ctx, `SELECT message_id, reason FROM dead_letters WHERE message_id LIKE 'poison-%'`)
		if err != nil {
			return false
		}
		defer rows.Close()
		for rows.Next() {
			var id, reason string
			if rows.Scan(&id, &reason) == nil {
				got[id] = reason
			}
		}
		return len(got) >= 3
	})
	r.faults = 3
	// The recovery is timed from the publishing of the poison, and includes waiting for it to be
	// dead-lettered (correct code: about 11 s under the race detector).
	r.bounds.recovery = time.Minute
	r.recovered(faultEnd)
	r.finish()
	for id, want := range wantReason {
		if got[id] != want {
			t.Errorf("%s: x-death reason %q, want %q (dead letters: %v)", id, got[id], want, got)
		}
	}
	var state string
	if err := r.db.QueryRow(ctx, `SELECT state FROM urls WHERE id = $1`, urlID).Scan(&state); err != nil || state != "queued" {
		t.Errorf("poisoned URL state = %q, %v; want it left queued", state, err)
	}
	stillRunning(t, workers...)
}
