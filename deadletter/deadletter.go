// Package deadletter mirrors the broker's dead-letter queue into Postgres and sends dead letters
// back where they came from. The processor runs a Mirror on the dead-letter queue; the dashboard
// lists, requeues and purges through a Service.
//
// Delivery is at least once throughout. The mirror acks a dead letter only after its row is
// committed, and a redelivered dead letter is recognised by its fingerprint (payload, message
// id and x-death headers) and stored once. A requeue republishes the payload with a confirm and
// only then deletes the row: if the process dies between the two, the row stays and a second
// requeue publishes the message again, which the pipeline's idempotent consumers absorb.
package deadletter

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/internal/backoff"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/metrics"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/sanitize"
	"github.com/trawlhq/trawl/store"
)

// RequeueHeader is set on every requeued message, with a fresh id, so that the same message
// dying again is a new dead letter rather than a duplicate of the one it was requeued from.
const RequeueHeader = "trawl-requeue-id"

// RequeuesHeader counts a message's requeues from the dead letters: a requeue sets it to one
// more than the dead letter's count, and the mirror reads it back into DeadLetter.Requeues when
// the message dies again, so a message that keeps coming back shows how often it did. A message
// that a worker splits into new ones (a redelivered batch of several jobs or results) starts
// again from 0.
const RequeuesHeader = "trawl-requeues"

// Inserter is what the Mirror needs from the database.
type Inserter interface {
	InsertDeadLetter(ctx context.Context, d store.DeadLetter) (int64, bool, error)
}

// Mirror stores every delivery of the dead-letter queue in Postgres and acks it after commit.
// Whatever arrives is stored, undecodable payloads and odd headers included: poison in the
// dead-letter queue must never loop.
type Mirror struct {
	Store Inserter
	Log   *slog.Logger
}

// Serve mirrors deliveries until the stream closes. A database outage is waited out with
// backoff, holding the delivery unacked; when ctx ends first the delivery is left unacked and
// returns to the queue when the channel closes.
func (m *Mirror) Serve(ctx context.Context, deliveries pipeline.Deliveries) {
	for d := range deliveries {
		m.handle(ctx, d)
	}
}

func (m *Mirror) handle(ctx context.Context, d pipeline.Delivery) {
	dl := FromDelivery(d, time.Now())
	raw := false
	for attempt := 0; ; attempt++ {
		id, inserted, err := m.Store.InsertDeadLetter(ctx, dl)
		if err == nil {
			if ackErr := d.Ack(false); ackErr != nil {
				m.Log.Warn("dead letter stored but not acked; its redelivery will be recognised", "err", ackErr, "id", id)
				return
			}
			if inserted {
				metrics.DeadLetters.Inc()
				m.Log.Info("dead letter stored", "id", id, "reason", dl.Reason, "queue", dl.OriginalQueue, "type", dl.MessageType, "requeues", dl.Requeues)
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !store.Transient(err) {
			if raw {
				// Not even the raw row is accepted. Keep the delivery unacked (never requeue it
				// in a loop): it returns to the queue when this channel closes.
				m.Log.Error("dead letter cannot be stored; held unacked", "err", err, "bytes", len(d.Body))
				return
			}
			// The row itself is refused (a value the schema rejects): store the raw message
			// with nothing derived from it, so it is still visible and can be requeued.
			m.Log.Error("dead letter refused by the database; storing it raw", "err", err, "bytes", len(d.Body))
			dl, raw = rawOnly(dl, err), true
			continue
		}
		delay := backoff.Delay(attempt, 100*time.Millisecond, 5*time.Second)
		m.Log.Warn("database unavailable; dead letter held", "err", err, "attempt", attempt+1, "retry_in", delay.String())
		if !backoff.Sleep(ctx, delay) {
			return
		}
	}
}

// rawOnly keeps only what cannot be refused: the payload, the fingerprint and where it came from.
func rawOnly(d store.DeadLetter, cause error) store.DeadLetter {
	return store.DeadLetter{
		Fingerprint: d.Fingerprint, Body: d.Body, Size: d.Size, Headers: json.RawMessage(`{}`),
		Reason: sanitize.Clip(d.Reason, 64), OriginalQueue: sanitize.Clip(d.OriginalQueue, 255),
		Exchange: sanitize.Clip(d.Exchange, 255), RoutingKey: sanitize.Clip(d.RoutingKey, 255), Count: d.Count, DeadAt: d.DeadAt,
		ErrorClass: "unstorable", Summary: sanitize.Clip("stored raw: "+cause.Error(), 300),
	}
}

// payload is the part of any Trawl message a dead letter is described by.
type payload struct {
	Type       string `json:"type"`
	ID         string `json:"id"`
	URL        string `json:"url"`
	TargetID   int64  `json:"target_id"`
	Status     int    `json:"status"`
	Error      string `json:"error"`
	ErrorClass string `json:"error_class"`
	RequestID  string `json:"request_id"`
	// Jobs are a crawl.jobs message's jobs: the first one stands for the message.
	Jobs []struct {
		URL      string `json:"url"`
		TargetID int64  `json:"target_id"`
	} `json:"jobs"`
}

// FromDelivery describes a dead-lettered delivery as a row: its x-death reason and origin, what
// its payload is about, and the raw body and headers.
func FromDelivery(d pipeline.Delivery, now time.Time) store.DeadLetter {
	dl := store.DeadLetter{
		MessageID: sanitize.Clip(d.MessageID, 200), ContentType: sanitize.Clip(d.ContentType, 200),
		MessageType: sanitize.Clip(d.Type, 100), Size: len(d.Body), Body: d.Body, DeadAt: now,
	}
	if dl.Body == nil {
		dl.Body = []byte{}
	}
	headerValues := d.Headers()
	if deaths, ok := headerValues["x-death"].([]any); ok && len(deaths) > 0 {
		if death, ok := deaths[0].(map[string]any); ok { // the most recent death comes first
			dl.Reason = str(death["reason"])
			dl.OriginalQueue = str(death["queue"])
			dl.Exchange = str(death["exchange"])
			if keys, ok := death["routing-keys"].([]any); ok && len(keys) > 0 {
				dl.RoutingKey = str(keys[0])
			}
			switch c := death["count"].(type) {
			case int64:
				dl.Count = c
			case int32:
				dl.Count = int64(c)
			}
			if t, ok := death["time"].(time.Time); ok && !t.IsZero() {
				dl.DeadAt = t
			}
		}
	}
	switch n := headerValues[RequeuesHeader].(type) {
	case int64:
		dl.Requeues = int(min(max(n, 0), math.MaxInt32))
	case int32:
		dl.Requeues = int(max(n, 0))
	case int16:
		dl.Requeues = int(max(n, 0))
	case int8:
		dl.Requeues = int(max(n, 0))
	}
	if dl.Reason == "" {
		dl.Reason = str(headerValues["x-first-death-reason"])
	}
	if dl.OriginalQueue == "" {
		dl.OriginalQueue = str(headerValues["x-first-death-queue"])
	}
	if dl.Exchange == "" {
		dl.Exchange = str(headerValues["x-first-death-exchange"])
	}
	if dl.Exchange == "" && dl.RoutingKey == "" {
		dl.Exchange, dl.RoutingKey = sanitize.Clip(d.Exchange, 255), sanitize.Clip(d.RoutingKey, 255)
	}
	dl.Reason, dl.OriginalQueue = sanitize.Clip(dl.Reason, 64), sanitize.Clip(dl.OriginalQueue, 255)
	dl.Exchange, dl.RoutingKey = sanitize.Clip(dl.Exchange, 255), sanitize.Clip(dl.RoutingKey, 255)

	// A message of several fetch results is described by its first one.
	body, results := d.Body, 0
	if parts, err := message.UnpackResults(d.Body); err == nil {
		body, results = parts[0], len(parts)
	}
	var p payload
	if err := json.Unmarshal(message.JSONPart(body), &p); err != nil || p.Type == "" {
		dl.ErrorClass = "undecodable"
		dl.Summary = sanitize.Clip("undecodable payload: "+preview(d.Body), 300)
	} else {
		items := len(p.Jobs)
		if items > 0 {
			p.URL, p.TargetID = p.Jobs[0].URL, p.Jobs[0].TargetID
		}
		if results > 0 {
			items, p.Type = results, message.TypeFetchResults
		}
		dl.MessageType = sanitize.Clip(p.Type, 100)
		if p.TargetID != 0 {
			tid := p.TargetID
			dl.TargetID = &tid
		}
		dl.URL = sanitize.Clip(p.URL, 2048)
		if u, err := url.Parse(p.URL); err == nil && u.Host != "" {
			dl.Host = sanitize.Clip(crawlurl.HostKey(u), 255)
		}
		dl.ErrorClass = sanitize.Clip(p.ErrorClass, 64)
		summary := p.Type
		if items > 1 {
			summary += " of " + strconv.Itoa(items) + ", the first:"
		}
		if p.Status != 0 {
			summary += " " + strconv.Itoa(p.Status)
		}
		if p.URL != "" {
			summary += " " + p.URL
		}
		if p.RequestID != "" {
			summary += " request " + p.RequestID
		}
		if p.Error != "" {
			summary += ": " + p.Error
		}
		dl.Summary = sanitize.Clip(summary, 300)
	}
	headers, err := json.Marshal(jsonValue(headerValues))
	if err != nil {
		headers = []byte(`{}`)
	}
	dl.Headers = headers
	h := sha256.New()
	for _, part := range []string{d.MessageID, d.Type, d.Timestamp.UTC().Format(time.RFC3339Nano), string(headers)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	h.Write(d.Body)
	dl.Fingerprint = hex.EncodeToString(h.Sum(nil))
	return dl
}

// jsonValue turns AMQP header values into JSON-safe ones: strings are sanitised (Postgres jsonb
// refuses NUL), byte strings that are not UTF-8 become {"base64": ...}.
func jsonValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[sanitize.Text(k)] = jsonValue(e)
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	case string:
		return sanitize.Text(x)
	case []byte:
		if utf8.Valid(x) {
			return sanitize.Text(string(x))
		}
		return map[string]any{"base64": base64.StdEncoding.EncodeToString(x)}
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case nil, bool, int8, int16, int32, int64, int, uint8, uint16, uint32, uint64, float32, float64:
		return x
	default:
		return sanitize.Text(fmt.Sprint(x))
	}
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return ""
}

func preview(b []byte) string {
	if len(b) > 120 {
		b = b[:120]
	}
	return sanitize.Text(string(b))
}
