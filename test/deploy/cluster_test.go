package deploy

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/google/go-cmp/cmp"
)

const (
	clusterPath     = "../../deploy/rabbitmq-cluster.yml"
	clusterConfPath = "../../deploy/rabbitmq/cluster.conf"
)

var clusterNodes = []string{"rabbitmq-1", "rabbitmq-2", "rabbitmq-3"}

func loadCluster(t *testing.T, env []string) *types.Project {
	t.Helper()
	options, err := cli.NewProjectOptions([]string{clusterPath}, cli.WithWorkingDirectory("../../deploy"), cli.WithEnv(env))
	if err != nil {
		t.Fatalf("NewProjectOptions: %v", err)
	}
	p, err := options.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("load %s: %v", clusterPath, err)
	}
	return p
}

func TestRabbitMQClusterFile(t *testing.T) {
	t.Parallel()
	p := loadCluster(t, nil)

	if diff := cmp.Diff(clusterNodes, p.ServiceNames()); diff != "" {
		t.Fatalf("services (-want +got):\n%s", diff)
	}
	conf := clusterConf(t)
	if got := conf["cluster_formation.peer_discovery_backend"]; got != "classic_config" {
		t.Errorf("peer_discovery_backend = %q, want classic_config", got)
	}
	var listed []string
	for i := 1; ; i++ {
		n, ok := conf["cluster_formation.classic_config.nodes."+string(rune('0'+i))]
		if !ok {
			break
		}
		listed = append(listed, n)
	}

	cookies := map[string]bool{}
	var want []string
	published := map[string]bool{}
	for _, name := range clusterNodes {
		s := service(t, p, name)
		if s.Image != "rabbitmq:4-management" {
			t.Errorf("%s image = %q, want rabbitmq:4-management", name, s.Image)
		}
		if s.Hostname != name {
			t.Errorf("%s hostname = %q: the node name rabbit@%s must be stable", name, s.Hostname, name)
		}
		want = append(want, "rabbit@"+s.Hostname)
		if s.HealthCheck == nil || len(s.HealthCheck.Test) < 2 {
			t.Errorf("%s: no healthcheck", name)
		}
		server, _ := envValue(s, "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS")
		ctl, _ := envValue(s, "RABBITMQ_CTL_ERL_ARGS")
		if !strings.HasPrefix(server, "-setcookie ") || server != ctl {
			t.Errorf("%s: server args %q and CLI args %q must set the same cookie", name, server, ctl)
		}
		cookies[server] = true
		if u, _ := envValue(s, "RABBITMQ_DEFAULT_USER"); u == "" || u == "guest" {
			t.Errorf("%s: RABBITMQ_DEFAULT_USER = %q", name, u)
		}
		var data, cfg bool
		for _, v := range s.Volumes {
			switch {
			case v.Type == types.VolumeTypeVolume && v.Target == "/var/lib/rabbitmq":
				data = true
			case v.Type == types.VolumeTypeBind && strings.HasPrefix(v.Target, "/etc/rabbitmq/conf.d/"):
				cfg = v.ReadOnly
				abs, _ := filepath.Abs(clusterConfPath)
				if v.Source != abs {
					t.Errorf("%s mounts %s, want %s", name, v.Source, abs)
				}
			}
		}
		if !data || !cfg {
			t.Errorf("%s: data volume %v, read-only cluster.conf %v; want both", name, data, cfg)
		}
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %s on %q, want 127.0.0.1", name, port.Published, port.HostIP)
			}
			if published[port.Published] {
				t.Errorf("host port %s published twice", port.Published)
			}
			published[port.Published] = true
		}
	}
	if len(cookies) != 1 {
		t.Errorf("nodes use %d different Erlang cookies, want one shared", len(cookies))
	}
	if diff := cmp.Diff(want, listed); diff != "" {
		t.Errorf("classic_config nodes (-hostnames +cluster.conf):\n%s", diff)
	}
	if conf["default_queue_type"] != "quorum" {
		t.Errorf("default_queue_type = %q, want quorum", conf["default_queue_type"])
	}

	// Every interpolation has a default, and the cookie can be overridden for all nodes at once.
	var missing []string
	for _, m := range interpolations(readFile(t, clusterPath)) {
		if !withDefaultRE.MatchString(m) {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		t.Errorf("interpolations without a default: %v", missing)
	}
	p2 := loadCluster(t, []string{"TRAWL_RABBITMQ_COOKIE=s3cret"})
	for _, name := range clusterNodes {
		if v, _ := envValue(service(t, p2, name), "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"); v != "-setcookie s3cret" {
			t.Errorf("%s with TRAWL_RABBITMQ_COOKIE=s3cret: %q", name, v)
		}
	}
}

// clusterConf parses the key = value lines of cluster.conf.
func clusterConf(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(clusterConfPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("cluster.conf: bad line %q", line)
			continue
		}
		k = strings.TrimSpace(k)
		if _, dup := out[k]; dup {
			t.Errorf("cluster.conf: %s set twice", k)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out
}
