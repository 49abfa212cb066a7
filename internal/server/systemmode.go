package server

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/switchyard-dev/switchyard"
)

// getSystemMode serves GET /system-mode/current: the mode, who set it and
// when, and what production needs, checked now.
func (s *server) getSystemMode(c *gin.Context) {
	c.JSON(http.StatusOK, s.core.Posture(c.Request.Context()))
}

// toggleRequest is the body of POST /system-mode/toggle.
type toggleRequest struct {
	confirmation
	TargetMode string `json:"target_mode"`
	Force      bool   `json:"force"`
}

// toggleSystemMode serves POST /system-mode/toggle: switch the process to
// target_mode live, once production's requirements are checked. With
// requirements missing it answers 400 listing them and changes nothing;
// with force it records the desired mode for a restart instead.
func (s *server) toggleSystemMode(c *gin.Context) {
	var req toggleRequest
	ch := s.decodeChange(c, "set_system_mode", switchyard.SystemModeKey, &req, nil)
	toggled, err := s.core.Toggle(c.Request.Context(), ch, req.TargetMode, req.Force)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toggled)
}
