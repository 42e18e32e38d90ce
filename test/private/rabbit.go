package private

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/trawlhq/trawl/test/testenv"
)

// rabbitBin holds the real scripts; /usr/sbin's wrappers switch to the rabbitmq user and its
// shared home (and Erlang cookie), which a private node must not use.
const rabbitBin = "/usr/lib/rabbitmq/bin"

// Rabbit is a private RabbitMQ node.
type Rabbit struct {
	t        testing.TB
	dir      string
	Node     string // Erlang node name, for rabbitmqctl -n
	Port     int    // AMQP port on 127.0.0.1
	DistPort int
	env      []string

	cmd  *exec.Cmd
	out  testenv.SyncBuffer
	done chan struct{}
}

// StartRabbit boots a private RabbitMQ node and waits until it accepts AMQP connections. It is
// shut down and its directory removed when the test ends.
func StartRabbit(t testing.TB) *Rabbit {
	t.Helper()
	if _, err := os.Stat(filepath.Join(rabbitBin, "rabbitmq-server")); err != nil {
		unavailable(t, "rabbitmq-server not installed: %v", err)
	}
	var lastErr error
	for range 3 { // a port can be taken between choosing it and the node binding it
		r, err := bootRabbit(t)
		if err == nil {
			return r
		}
		lastErr = err
	}
	t.Fatalf("chaos: start rabbitmq: %v", lastErr)
	return nil
}

func bootRabbit(t testing.TB) (*Rabbit, error) {
	dir, err := os.MkdirTemp("", "trawl-rabbit-")
	if err != nil {
		return nil, err
	}
	r := &Rabbit{t: t, dir: dir, Port: FreePort(t), DistPort: FreePort(t)}
	r.Node = fmt.Sprintf("trawlchaos%d@localhost", r.Port)
	home := filepath.Join(dir, "home")
	files := map[string]string{
		"enabled_plugins":   "[].\n", // no management plugin: it would want port 15672
		"rabbitmq.conf":     "loopback_users = none\nlog.file.level = info\n",
		"rabbitmq-env.conf": "",
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return nil, err
		}
	}
	r.env = append(os.Environ(),
		"HOME="+home, // the Erlang cookie is created here and shared by server and CLI
		"RABBITMQ_NODENAME="+r.Node,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		fmt.Sprintf("RABBITMQ_NODE_PORT=%d", r.Port),
		fmt.Sprintf("RABBITMQ_DIST_PORT=%d", r.DistPort),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(dir, "advanced.config"),
		"RABBITMQ_PID_FILE="+filepath.Join(dir, "pid"),
	)
	cmd := exec.Command(filepath.Join(rabbitBin, "rabbitmq-server"))
	cmd.Dir, cmd.Env = dir, r.env
	cmd.Stdout, cmd.Stderr = &r.out, &r.out
	// If the test process dies without cleaning up (a -timeout panic), the start script gets
	// SIGTERM and stops the node it started, instead of leaving it running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	r.cmd, r.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(r.done) }()
	if _, err := r.Ctl("wait", "--timeout", "120", filepath.Join(dir, "pid")); err != nil {
		r.destroy()
		return nil, fmt.Errorf("node did not start: %w\n%s", err, testenv.Tail(r.output(), 20))
	}
	if err := r.waitAMQP(60 * time.Second); err != nil {
		r.destroy()
		return nil, err
	}
	t.Cleanup(r.destroy)
	return r, nil
}

func (r *Rabbit) output() string { return r.out.String() }

// URL is the node's AMQP URL (guest may log in from anywhere on this private node).
func (r *Rabbit) URL() string { return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", r.Port) }

// Ctl runs rabbitmqctl against this node only.
func (r *Rabbit) Ctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(rabbitBin, "rabbitmqctl"), append([]string{"-n", r.Node}, args...)...)
	cmd.Dir, cmd.Env = r.dir, r.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("rabbitmqctl %s: %w: %s", strings.Join(args, " "), err, testenv.Tail(string(out), 5))
	}
	return string(out), nil
}

func (r *Rabbit) mustCtl(args ...string) {
	r.t.Helper()
	if _, err := r.Ctl(args...); err != nil {
		r.t.Fatalf("chaos: %v", err)
	}
}

// Stop stops the broker application: every connection is closed and the AMQP port stops
// listening, while the Erlang node (and the queues' data on disk) stays for Start.
func (r *Rabbit) Stop() {
	r.t.Helper()
	r.mustCtl("stop_app")
}

// Start starts the broker application again after Stop and waits until it accepts connections.
func (r *Rabbit) Start() {
	r.t.Helper()
	r.mustCtl("start_app")
	if err := r.waitAMQP(2 * time.Minute); err != nil {
		r.t.Fatalf("chaos: %v", err)
	}
}

// SetMemoryWatermark runs set_vm_memory_high_watermark on this node: a tiny fraction raises
// the memory alarm (publishing connections are blocked), 0.4 is the default again.
func (r *Rabbit) SetMemoryWatermark(fraction string) {
	r.t.Helper()
	r.mustCtl("set_vm_memory_high_watermark", fraction)
}

// Log returns the node's log file.
func (r *Rabbit) Log() string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "log", r.Node+".log"))
	return string(b)
}

func (r *Rabbit) waitAMQP(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := amqp.Dial(r.URL())
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chaos: rabbitmq node %s not accepting connections after %s: %w", r.Node, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// destroy shuts the node down (killing it if it will not go) and removes its directory.
func (r *Rabbit) destroy() {
	select {
	case <-r.done:
	default:
		_, _ = r.Ctl("shutdown", "--timeout", "30")
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
			<-r.done
		}
	}
	// Erlang helpers (erl_child_setup, inet_gethost) live in the node's process group.
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	os.RemoveAll(r.dir)
}
