package main

import (
	"strings"
	"testing"
	"time"

	"github.com/trawlhq/trawl/service"
)

// TestConfig checks the processor's defaults and that each bad setting is refused with an error
// naming its variable.
func TestConfig(t *testing.T) {
	t.Parallel()
	var cfg Config
	if err := service.LoadConfig(nil, &cfg); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if cfg.BatchSize != 200 || cfg.HostMaxInFlight != 2000 || cfg.MaxInFlight != 4000 || cfg.URLCache != 100000 || cfg.SearchIndexBatch != 100 ||
		cfg.SearchIndexBusyShare != 0.25 || cfg.SearchIndexWorkers != 2 || !cfg.SchedulerElection || cfg.JobsPerMessage != 8 || cfg.PaceAhead != 4*time.Second || cfg.PacedHostsAhead != 32 ||
		cfg.FetchHistoryRetention != 90*24*time.Hour || cfg.RateRetention != 7*24*time.Hour || cfg.DeleteBatch != 1000 {
		t.Errorf("defaults: %+v", cfg)
	}
	var off Config
	if err := service.LoadConfig([]string{"TRAWL_PROCESSOR_URL_CACHE=0", "TRAWL_SEARCH_INDEX_BUSY_SHARE=1",
		"TRAWL_FETCH_HISTORY_RETENTION=0", "TRAWL_RATE_RETENTION=0"}, &off); err != nil {
		t.Errorf("cache off, no pacing: %v", err)
	}
	for _, tc := range []struct{ env, variable string }{
		{"TRAWL_PROCESSOR_BATCH_SIZE=0", "TRAWL_PROCESSOR_BATCH_SIZE"},
		{"TRAWL_SCHEDULER_PACE_AHEAD=-1s", "TRAWL_SCHEDULER_PACE_AHEAD"},
		{"TRAWL_SCHEDULER_PACE_AHEAD=2m", "TRAWL_SCHEDULER_PACE_AHEAD"},
		{"TRAWL_SCHEDULER_PACED_HOSTS_AHEAD=-1", "TRAWL_SCHEDULER_PACED_HOSTS_AHEAD"},
		{"TRAWL_SCHEDULER_JOBS_PER_MESSAGE=1", "TRAWL_SCHEDULER_PACE_AHEAD"},
		{"TRAWL_PROCESSOR_URL_CACHE=-1", "TRAWL_PROCESSOR_URL_CACHE"},
		{"TRAWL_SEARCH_INDEX_BATCH=0", "TRAWL_SEARCH_INDEX_BATCH"},
		{"TRAWL_SEARCH_INDEX_BATCH=20000", "TRAWL_SEARCH_INDEX_BATCH"},
		{"TRAWL_SEARCH_INDEX_BUSY_SHARE=0", "TRAWL_SEARCH_INDEX_BUSY_SHARE"},
		{"TRAWL_SEARCH_INDEX_BUSY_SHARE=1.5", "TRAWL_SEARCH_INDEX_BUSY_SHARE"},
		{"TRAWL_SEARCH_INDEX_BUSY_SHARE=NaN", "TRAWL_SEARCH_INDEX_BUSY_SHARE"},
		{"TRAWL_SEARCH_INDEX_WORKERS=0", "TRAWL_SEARCH_INDEX_WORKERS"},
		{"TRAWL_FETCH_HISTORY_RETENTION=10m", "TRAWL_FETCH_HISTORY_RETENTION"},
		{"TRAWL_FETCH_HISTORY_RETENTION=-1h", "TRAWL_FETCH_HISTORY_RETENTION"},
		{"TRAWL_RATE_RETENTION=1s", "TRAWL_RATE_RETENTION"},
		{"TRAWL_RATE_RETENTION=forever", "TRAWL_RATE_RETENTION"},
		{"TRAWL_SEARCH_INDEX_WORKERS=lots", "TRAWL_SEARCH_INDEX_WORKERS"},
		{"TRAWL_SCHEDULER_ELECTION=maybe", "TRAWL_SCHEDULER_ELECTION"},
		{"TRAWL_TARGET_DELETE_BATCH=0", "TRAWL_TARGET_DELETE_BATCH"},
		{"TRAWL_TARGET_DELETE_BATCH=200000", "TRAWL_TARGET_DELETE_BATCH"},
		{"TRAWL_TARGET_DELETE_BATCH=some", "TRAWL_TARGET_DELETE_BATCH"},
		{"TRAWL_SCHEDULER_JOBS_PER_MESSAGE=0", "TRAWL_SCHEDULER_JOBS_PER_MESSAGE"},
		{"TRAWL_SCHEDULER_JOBS_PER_MESSAGE=65", "TRAWL_SCHEDULER_JOBS_PER_MESSAGE"},
	} {
		var cfg Config
		err := service.LoadConfig([]string{tc.env}, &cfg)
		if err == nil || !strings.Contains(err.Error(), tc.variable) {
			t.Errorf("%s: err = %v, want one naming %s", tc.env, err, tc.variable)
		}
	}
}
