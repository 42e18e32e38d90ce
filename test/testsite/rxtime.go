//go:build linux

package testsite

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// StampArrivals makes an unstarted httptest server's handlers able to ask when the kernel
// received the request they serve (Arrival): on a busy machine the test process may read a
// request tens of milliseconds after it arrived, so a handler's clock would measure the test's
// scheduling, not the client's spacing. Linux stamps each received segment (SO_TIMESTAMPNS) and
// hands the stamp to recvmsg.
func StampArrivals(srv *httptest.Server) {
	srv.Listener = rxListener{srv.Listener}
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if rc, ok := c.(*rxConn); ok {
			return context.WithValue(ctx, rxKey{}, rc)
		}
		return ctx
	}
}

type rxKey struct{}

// Arrival is when the kernel received the latest bytes of r's connection, which for a client
// that sends a request only after the previous response (as a crawler does) are r's; the time
// now if the server does not stamp arrivals (StampArrivals) or the stamp is unknown.
func Arrival(r *http.Request) time.Time {
	if c, ok := r.Context().Value(rxKey{}).(*rxConn); ok {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.last.IsZero() {
			return c.last
		}
	}
	return time.Now()
}

type rxListener struct{ net.Listener }

func (l rxListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c, nil
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil || serr != nil {
		return c, nil
	}
	return &rxConn{TCPConn: tc, raw: raw}, nil
}

type rxConn struct {
	*net.TCPConn
	raw syscall.RawConn

	mu   sync.Mutex
	last time.Time
}

func (c *rxConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	oob := make([]byte, syscall.CmsgSpace(int(unsafe.Sizeof(syscall.Timespec{}))))
	var n, oobn int
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = syscall.Recvmsg(int(fd), p, oob, 0)
		return !errors.Is(rerr, syscall.EAGAIN)
	})
	if err != nil {
		return 0, err // a deadline, or the connection closed
	}
	if rerr != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: rerr}
	}
	if n == 0 {
		return 0, io.EOF
	}
	if msgs, err := syscall.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range msgs {
			if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SO_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(syscall.Timespec{})) {
				ts := *(*syscall.Timespec)(unsafe.Pointer(&m.Data[0]))
				c.mu.Lock()
				c.last = time.Unix(ts.Sec, ts.Nsec)
				c.mu.Unlock()
			}
		}
	}
	return n, nil
}
