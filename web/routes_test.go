package web

import (
	"cmp"
	"slices"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
)

// TestRoutes compares the registered routes with the list below, so that a route dropped,
// added or pointed at another handler in a refactor fails here rather than in production.
func TestRoutes(t *testing.T) {
	t.Parallel()
	want := []string{
		"DELETE /api/targets/:id apiDeleteTarget",
		"GET / overview",
		"GET /api/dead-letters apiDeadLetters",
		"GET /api/failed apiFailed",
		"GET /api/overview apiOverview",
		"GET /api/pages/:id apiPage",
		"GET /api/pages/:id/history apiHistory",
		"GET /api/queues apiQueues",
		"GET /api/retries apiRetrying",
		"GET /api/search apiSearch",
		"GET /api/targets listTargets",
		"GET /api/targets/:id getTarget",
		"GET /api/targets/:id/errors apiErrors",
		"GET /api/targets/:id/export.csv apiExportCSV",
		"GET /api/targets/:id/export.jsonl apiExportJSONL",
		"GET /api/targets/:id/hosts apiHosts",
		"GET /api/targets/:id/pages apiPages",
		"GET /api/throughput apiThroughput",
		"GET /api/workers apiWorkers",
		"GET /dead-letters/purge purgeConfirm",
		"GET /events/overview overviewEvents",
		"GET /events/targets targetsEvents",
		"GET /events/targets/:id targetEvents",
		"GET /events/workers workersEvents",
		"GET /healthz WrapHandler",
		"GET /login loginForm",
		"GET /pages/:id pagePage",
		"GET /readyz WrapHandler",
		"GET /retries retriesPage",
		"GET /search searchPage",
		"GET /static/* WrapHandler",
		"GET /targets targetsPage",
		"GET /targets/:id targetPage",
		"GET /targets/:id/delete deleteConfirm",
		"GET /targets/:id/edit editTargetPage",
		"GET /workers workersPage",
		"PATCH /api/targets/:id patchTarget",
		"POST /api/dead-letters/purge apiPurge",
		"POST /api/dead-letters/requeue apiRequeue",
		"POST /api/dead-letters/requeue-all apiRequeueAll",
		"POST /api/pages/:id/recrawl apiRecrawl",
		"POST /api/sessions/revoke-all apiRevokeSessions",
		"POST /api/targets createTarget",
		"POST /api/targets/:id/:action apiTargetAction",
		"POST /dead-letters/:id/requeue requeueOne",
		"POST /dead-letters/purge purge",
		"POST /dead-letters/requeue-all requeueAll",
		"POST /login login",
		"POST /logout logout",
		"POST /logout-all logoutAll",
		"POST /pages/:id/recrawl recrawlPage",
		"POST /targets addTarget",
		"POST /targets/:id/:action targetAction",
		"POST /targets/:id/edit saveTarget",
	}
	srv := &Server{}
	var got []string
	for _, r := range srv.Handler().Routes() {
		got = append(got, r.Method+" "+r.Path+" "+handlerName(r.Name))
	}
	slices.SortFunc(got, cmp.Compare)
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
}

// handlerName shortens echo's route name, the handler function's full name such as
// "github.com/trawlhq/trawl/web.(*Server).overview-fm", to "overview". An http.Handler
// wrapped by echo.WrapHandler is a closure whose name depends on inlining; it is "WrapHandler".
func handlerName(full string) string {
	if strings.Contains(full, ".WrapHandler.") {
		return "WrapHandler"
	}
	name := strings.TrimSuffix(full[strings.LastIndexByte(full, '/')+1:], "-fm")
	return name[strings.LastIndexByte(name, '.')+1:]
}
