package server

import "github.com/gin-gonic/gin"

// routes registers every route. openapi/openapi.yaml describes each; a test
// fails when the two disagree.
func (s *server) routes(r *gin.Engine) {
	r.Use(assignRequestID, noSniff, s.cors)
	if s.observer != nil || s.accessLog {
		r.Use(s.observe)
	}
	if s.tracer != nil {
		r.Use(s.traceRequests)
	}
	r.Use(s.recoverPanics)
	r.NoRoute(s.notFound)
	r.NoMethod(s.methodNotAllowed)

	// Probes may ask with HEAD, for the status alone. Readiness is never
	// cached: it is the state now, and its reason depends on the token.
	r.GET("/healthz", s.healthz)
	r.HEAD("/healthz", s.healthz)
	r.GET("/readyz", noStore, s.readyz)
	r.HEAD("/readyz", noStore, s.readyz)
	if s.metrics != nil {
		r.GET("/metrics", gin.WrapH(s.metrics))
	}

	// Every body is capped at MaxBodyBytes but an import's, which carries a
	// whole flag file and has its own cap (limitImportBody).
	api := r.Group("", s.limitBody)

	// What applications read needs no token unless client tokens are
	// required: applications read flags, they do not change them.
	client := api.Group("", s.requireClient)
	client.POST("/ofrep/v1/evaluate/flags/:key", s.evaluateFlag)
	client.POST("/ofrep/v1/evaluate/flags", s.evaluateFlags)
	client.POST("/v1/sessions", s.createSession)
	client.GET("/v1/sessions/:id", s.getSession)
	// In-process providers fetch the compiled state and follow its changes.
	client.GET("/v1/bundle", s.getBundle)
	client.GET("/v1/stream", s.stream)
	// Static-context OFREP providers (web, mobile) hear of changes here:
	// bulk evaluations advertise it (OFREP ADR-0008).
	api.GET(ofrepEventsPath, s.requireStreamClient, s.ofrepEvents)

	// What needs a token is never cached.
	admin := api.Group("/v1/admin", noStore, s.authenticate)
	admin.GET("/runtime/status", s.getStatus)
	admin.POST("/runtime/flags", s.setFlag)
	admin.POST("/runtime/profile", s.setProfile)
	admin.POST("/runtime/override", s.setOverride)
	admin.DELETE("/runtime/override/:module", s.clearOverride)
	admin.PUT("/runtime/modules/:key", s.registerModule)
	admin.PUT("/runtime/profiles/:name", s.updateProfile)
	admin.POST("/system/exam-mode", s.setExamMode)
	admin.GET("/audit", s.listAudit)
	admin.GET("/audit/verify", s.verifyAudit)
	admin.GET("/export", s.exportFlags)
	admin.POST("/changes", s.proposeChange)
	admin.GET("/changes", s.listChanges)
	admin.GET("/changes/:id", s.getChange)
	admin.POST("/changes/:id/approve", s.approveChange)
	admin.POST("/changes/:id/reject", s.rejectChange)
	admin.POST("/changes/:id/cancel", s.cancelChange)
	admin.GET("/system-mode/current", s.getSystemMode)
	admin.POST("/system-mode/toggle", s.toggleSystemMode)

	// The system mode also has the short paths of the operator runbook.
	mode := api.Group("/system-mode", noStore, s.authenticate)
	mode.GET("/current", s.getSystemMode)
	mode.POST("/toggle", s.toggleSystemMode)

	r.POST("/v1/admin/import", noStore, s.limitImportBody, s.authenticate, s.importFlags)

	// The operator console is HTML, not part of the API's contract: it
	// signs operators in with their tokens and calls the same core.
	if s.console != nil {
		r.GET("/console/*path", s.serveConsole)
		r.POST("/console/*path", s.serveConsole)
	}
}

// serveConsole hands a request to the console, with the client's address
// and the request ID.
func (s *server) serveConsole(c *gin.Context) {
	s.console.ServeConsole(c.Writer, c.Request, c.ClientIP(), requestID(c))
}
