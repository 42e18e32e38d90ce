package web

import (
	"io/fs"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/trawlhq/trawl/service"
)

// routes is the dashboard's route table: the middleware in front of every request, then every
// method and path it answers, grouped by kind, with the file that holds the handlers.
// TestRoutes keeps the same list; change both together.
func (s *Server) routes(e *echo.Echo) {
	// Every request passes, in this order: the security headers (on every answer, refusals
	// too); the Host check against DNS rebinding; authentication (session cookie, or bearer
	// token for /api/; /login, /healthz, /readyz and /static/ are open); the NUL and UTF-8
	// check of query and form parameters; CSRF protection of state changes. See security.go
	// and input.go.
	e.Use(securityHeaders, s.checkHost, s.authenticate, checkParams, s.csrf)

	// Health, for orchestrators and load balancers: JSON, open, answered whatever the Host.
	e.GET("/healthz", echo.WrapHandler(service.HealthHandler(s.Checks)))
	e.GET("/readyz", echo.WrapHandler(service.HealthHandler(s.Checks)))

	// Static assets (htmx, CSS), embedded in the binary; open.
	sub, _ := fs.Sub(staticFS, "static")
	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", staticHandler(sub))))

	// Login and logout (login.go).
	e.GET("/login", s.loginForm)
	e.POST("/login", s.login)
	e.POST("/logout", s.logout)
	e.POST("/logout-all", s.logoutAll)

	// Pages, and the forms they post to. A POST answers with a redirect, or with a fragment
	// when htmx sent it.
	//
	// Overview and workers (pages_overview.go).
	e.GET("/", s.overview)
	e.GET("/workers", s.workersPage)
	// Targets (pages_targets.go); :action is pause, resume, cancel, recrawl or delete, and
	// /edit is the edit form (a static segment, so it wins over :action).
	e.GET("/targets", s.targetsPage)
	e.POST("/targets", s.addTarget)
	e.GET("/targets/:id", s.targetPage)
	e.POST("/targets/:id/:action", s.targetAction)
	e.GET("/targets/:id/delete", s.deleteConfirm)
	e.GET("/targets/:id/edit", s.editTargetPage)
	e.POST("/targets/:id/edit", s.saveTarget)
	// Search, page detail, re-crawl (pages_search.go).
	e.GET("/search", s.searchPage)
	e.GET("/pages/:id", s.pagePage)
	e.POST("/pages/:id/recrawl", s.recrawlPage)
	// Retries and dead letters (pages_retries.go).
	e.GET("/retries", s.retriesPage)
	e.POST("/dead-letters/:id/requeue", s.requeueOne)
	e.POST("/dead-letters/requeue-all", s.requeueAll)
	e.GET("/dead-letters/purge", s.purgeConfirm)
	e.POST("/dead-letters/purge", s.purge)

	// Live updates: server-sent events (sse.go), one stream per page, named by the page in
	// Chrome.Live. A list's stream takes the page's query (filter, cursor).
	e.GET("/events/overview", s.overviewEvents)
	e.GET("/events/workers", s.workersEvents)
	e.GET("/events/targets", s.targetsEvents)
	e.GET("/events/targets/:id", s.targetEvents)

	// JSON API, with a session cookie or a bearer token; README.md documents it.
	api := e.Group("/api")
	// Targets (api_targets.go); :action is pause, resume, cancel or recrawl.
	api.POST("/targets", s.createTarget)
	api.GET("/targets", s.listTargets)
	api.GET("/targets/:id", s.getTarget)
	api.POST("/targets/:id/:action", s.apiTargetAction)
	api.PATCH("/targets/:id", s.patchTarget)
	api.DELETE("/targets/:id", s.apiDeleteTarget)
	api.GET("/targets/:id/hosts", s.apiHosts)
	api.GET("/targets/:id/errors", s.apiErrors)
	api.GET("/targets/:id/pages", s.apiPages)
	api.GET("/targets/:id/export.jsonl", s.apiExportJSONL)
	api.GET("/targets/:id/export.csv", s.apiExportCSV)
	// Overview, queues, throughput, workers (api_overview.go).
	api.GET("/overview", s.apiOverview)
	api.GET("/queues", s.apiQueues)
	api.GET("/throughput", s.apiThroughput)
	api.GET("/workers", s.apiWorkers)
	// Search, page detail, re-crawl (api_search.go).
	api.GET("/search", s.apiSearch)
	api.GET("/pages/:id", s.apiPage)
	api.GET("/pages/:id/history", s.apiHistory)
	api.POST("/pages/:id/recrawl", s.apiRecrawl)
	// Retries, failures and dead letters (api_retries.go).
	api.GET("/retries", s.apiRetrying)
	api.GET("/failed", s.apiFailed)
	api.GET("/dead-letters", s.apiDeadLetters)
	api.POST("/dead-letters/requeue", s.apiRequeue)
	api.POST("/dead-letters/requeue-all", s.apiRequeueAll)
	api.POST("/dead-letters/purge", s.apiPurge)
	// Sessions: log out everywhere (login.go).
	api.POST("/sessions/revoke-all", s.apiRevokeSessions)
}
