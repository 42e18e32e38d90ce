package private

import (
	"bufio"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// TestProxyPartition: bytes flow, are held while partitioned (on old and new connections), and
// are delivered once healed.
func TestProxyPartition(t *testing.T) {
	t.Parallel()
	p := StartProxy(t, echoServer(t))
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	echo := func(conn net.Conn, rd *bufio.Reader, msg string, wait time.Duration) (string, error) {
		if _, err := conn.Write([]byte(msg + "\n")); err != nil {
			return "", err
		}
		conn.SetReadDeadline(time.Now().Add(wait))
		return rd.ReadString('\n')
	}
	if got, err := echo(c, r, "a", 10*time.Second); err != nil || got != "a\n" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	p.Partition()
	if got, err := echo(c, r, "b", 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("while partitioned: %q, %v; want a timeout", got, err)
	}
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	r2 := bufio.NewReader(c2)
	if got, err := echo(c2, r2, "c", 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("new connection while partitioned: %q, %v; want a timeout", got, err)
	}
	p.Heal()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := r.ReadString('\n'); err != nil || got != "b\n" {
		t.Fatalf("after heal = %q, %v; want the held-back echo", got, err)
	}
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := r2.ReadString('\n'); err != nil || got != "c\n" {
		t.Fatalf("new connection after heal = %q, %v", got, err)
	}
}

// TestProxyRefuse: Refuse breaks an open connection and every new one until Heal, after which
// connections work again.
func TestProxyRefuse(t *testing.T) {
	t.Parallel()
	p := StartProxy(t, echoServer(t))
	echo := func(msg string) (string, error) {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			return "", err
		}
		defer c.Close()
		if _, err := c.Write([]byte(msg + "\n")); err != nil {
			return "", err
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		return bufio.NewReader(c).ReadString('\n')
	}
	open, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if got, err := echo("a"); err != nil || got != "a\n" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	p.Refuse()
	open.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := open.Read(make([]byte, 1)); err == nil {
		t.Fatalf("open connection after Refuse: read %d bytes, want it closed", n)
	}
	if got, err := echo("b"); err == nil {
		t.Fatalf("new connection while refusing echoed %q, want it closed", got)
	}
	p.Heal()
	if got, err := echo("c"); err != nil || got != "c\n" {
		t.Fatalf("after heal = %q, %v", got, err)
	}
}

// echoServer listens on loopback and echoes each line back until the test ends; it returns its
// address.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() { // ends when the listener closes
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if _, err := c.Write(append(sc.Bytes(), '\n')); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
