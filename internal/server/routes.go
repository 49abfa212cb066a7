package server

import "github.com/gin-gonic/gin"

// routes registers every route. openapi/openapi.yaml describes each; a test
// fails when the two disagree.
func (s *server) routes(r *gin.Engine) {
	r.Use(assignRequestID, s.recoverPanics, s.limitBody)
	r.NoRoute(s.notFound)

	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)

	// Evaluation needs no token: applications read flags, they do not
	// change them.
	r.POST("/ofrep/v1/evaluate/flags/:key", s.evaluateFlag)
	r.POST("/ofrep/v1/evaluate/flags", s.evaluateFlags)
	r.POST("/v1/sessions", s.createSession)
	r.GET("/v1/sessions/:id", s.getSession)

	admin := r.Group("/v1/admin", s.authenticate)
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
}
