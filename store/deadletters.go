package store

import "time"

// DeadLetter is a message the broker dead-lettered, mirrored into Postgres by the processor so
// operators can list, requeue and purge it from the dashboard.
type DeadLetter struct {
	ID            int64     `json:"id"`
	Reason        string    `json:"reason"`         // x-death reason: rejected, delivery_limit, expired, maxlen
	OriginalQueue string    `json:"original_queue"` // queue the message died in
	Exchange      string    `json:"exchange"`       // exchange it was first published to
	RoutingKey    string    `json:"routing_key"`
	MessageType   string    `json:"message_type"` // envelope type when decodable
	TargetID      *int64    `json:"target_id,omitempty"`
	Host          string    `json:"host,omitempty"`
	URL           string    `json:"url,omitempty"`
	ErrorClass    string    `json:"error_class,omitempty"`
	Summary       string    `json:"summary"` // short, sanitized description of the payload
	Size          int       `json:"size"`
	Count         int64     `json:"count"` // x-death count
	DeadAt        time.Time `json:"dead_at"`
}

// DeadLetterFilter selects dead letters; zero fields match everything.
type DeadLetterFilter struct {
	TargetID   int64
	Host       string
	ErrorClass string
	Reason     string
	AfterID    int64 // keyset pagination: rows with ID > AfterID
	Limit      int
}
