package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// openConfirmChannel opens a channel on conn in confirm mode, with its returns and confirms.
// Returns come on an unbuffered channel: the library's reader blocks until the listener has
// taken a return, and only then reads the confirm that follows it. A listener that takes both
// therefore always sees a message's return before its confirm. confirmBuf sizes the confirm
// channel.
func openConfirmChannel(ctx context.Context, conn *Conn, confirmBuf int) (*amqp.Channel, <-chan amqp.Return, <-chan amqp.Confirmation, error) {
	ch, err := conn.Channel(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, nil, nil, fmt.Errorf("pipeline: confirm mode: %w", err)
	}
	returns := ch.NotifyReturn(make(chan amqp.Return))
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, confirmBuf))
	return ch, returns, confirms, nil
}

// closeChannelBounded closes a publishing channel of conn. A broker with a resource alarm stops
// reading from publishing connections, so a graceful channel close would wait for a close-ok
// that never comes: the close gets a bound, after which the whole connection is closed, which
// ends the channel (and any blocked write).
func closeChannelBounded(conn *Conn, ch *amqp.Channel, log *slog.Logger) {
	if ch.IsClosed() {
		return
	}
	if conn.Blocked() {
		_ = conn.Close() // known blocked: do not even try the handshake
	}
	closed := make(chan struct{})
	go func() { _ = ch.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(closeTimeout):
		log.Warn("publishing channel did not close in time; closing its connection", "timeout", closeTimeout.String())
		_ = conn.Close()
		<-closed
	}
}
