package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// pprofSlice is the length of one CPU profile request; a run's profile is the merge of its
// consecutive slices, so it covers the run whatever its length.
const pprofSlice = 2 * time.Second

// pprofRun collects Go profiles from processes started with TRAWL_PPROF=true (BENCH_PROFILE=1):
// CPU profiles in consecutive slices from the POST to done, a heap profile when half the pages
// are fetched and another at the end. finish merges and summarises them under dir.
type pprofRun struct {
	dir   string
	addrs map[string]string // kind (crawler, processor) -> health address
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup

	mu    sync.Mutex
	parts map[string][]string // kind -> CPU slice files
	mid   bool                // the mid-run heap profiles are taken
	errs  []error
}

func startPprof(t *testing.T, cfg config, addrs map[string]string) *pprofRun {
	t.Helper()
	dir := filepath.Join(cfg.OutDir, "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	p := &pprofRun{dir: dir, addrs: addrs, ctx: ctx, stop: stop, parts: map[string][]string{}}
	for kind, addr := range addrs {
		p.wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				file := filepath.Join(dir, fmt.Sprintf("%s.cpu.part%03d.pprof", kind, i))
				// Not bound to ctx: a slice in progress when the run ends is finished and kept.
				if err := fetchTo(context.Background(), fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(pprofSlice/time.Second)), file); err != nil {
					p.fail(err)
					return
				}
				p.mu.Lock()
				p.parts[kind] = append(p.parts[kind], file)
				p.mu.Unlock()
			}
		})
	}
	return p
}

// watch takes the mid-run heap profiles once the target has fetched half of want pages.
func (p *pprofRun) watch(dashboard string, id int64, want int) {
	p.wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.ctx.Done():
				return
			case <-tick.C:
			}
			var st struct {
				Fetched int64 `json:"fetched"`
			}
			if err := getJSON(p.ctx, fmt.Sprintf("%s/api/targets/%d", dashboard, id), &st); err != nil || st.Fetched < int64(want/2) {
				continue
			}
			p.heaps("heap")
			p.mu.Lock()
			p.mid = true
			p.mu.Unlock()
			return
		}
	})
}

func (p *pprofRun) heaps(name string) {
	for kind, addr := range p.addrs {
		if err := fetchTo(context.Background(), "http://"+addr+"/debug/pprof/heap", filepath.Join(p.dir, kind+"."+name+".pprof")); err != nil {
			p.fail(err)
		}
	}
}

func (p *pprofRun) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, err)
}

// finish stops the collection (the processes must still be running), takes the end-of-run heap
// profiles, merges each process's CPU slices into KIND.cpu.pprof and writes `go tool pprof -top`
// summaries next to every profile.
func (p *pprofRun) finish(t *testing.T) {
	t.Helper()
	p.stop()
	p.wg.Wait()
	if !p.mid { // a run shorter than the watch's first look
		p.heaps("heap")
	}
	p.heaps("heap-end")
	for _, err := range p.errs {
		t.Errorf("pprof: %v", err)
	}
	for _, kind := range slices.Sorted(maps.Keys(p.addrs)) {
		cpu := filepath.Join(p.dir, kind+".cpu.pprof")
		args := append([]string{"tool", "pprof", "-proto"}, p.parts[kind]...)
		out, err := exec.Command("go", args...).Output()
		if err != nil {
			t.Errorf("merge %s CPU profiles: %v", kind, err)
			continue
		}
		if err := os.WriteFile(cpu, out, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, f := range p.parts[kind] {
			_ = os.Remove(f)
		}
		summaries := []struct{ profile, out, index string }{
			{cpu, kind + ".cpu.txt", ""},
			{filepath.Join(p.dir, kind+".heap.pprof"), kind + ".heap.txt", "inuse_space"},
			{filepath.Join(p.dir, kind+".heap-end.pprof"), kind + ".heap-end.txt", "inuse_space"},
			{filepath.Join(p.dir, kind+".heap-end.pprof"), kind + ".alloc.txt", "alloc_space"},
		}
		for _, s := range summaries {
			args := []string{"tool", "pprof", "-top", "-nodecount=25"}
			if s.index != "" {
				args = append(args, "-sample_index="+s.index)
			}
			out, err := exec.Command("go", append(args, s.profile)...).CombinedOutput()
			if err != nil {
				t.Errorf("go tool pprof -top %s: %v\n%s", s.profile, err, out)
				continue
			}
			_ = os.WriteFile(filepath.Join(p.dir, s.out), out, 0o644)
		}
		t.Logf("profiles of %s: %s (%d CPU slices of %s merged), %s.{heap,heap-end}.pprof and *.txt summaries",
			kind, cpu, len(p.parts[kind]), pprofSlice, filepath.Join(p.dir, kind))
	}
}

func fetchTo(ctx context.Context, url, file string) error {
	ctx, cancel := context.WithTimeout(ctx, pprofSlice+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return os.WriteFile(file, body, 0o644)
}

func getJSON(ctx context.Context, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
