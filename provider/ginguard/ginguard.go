// Package ginguard adapts the provider's freeze and exam guards to Gin, kept
// apart so services on net/http do not link Gin.
package ginguard

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/switchyard-dev/switchyard/provider"
)

// Middleware returns a Gin handler that aborts with 423 while g refuses,
// and otherwise lets the chain continue.
func Middleware(g *provider.Guard) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := g.Check(c.Request.Context()); err != nil {
			c.Data(http.StatusLocked, "application/json", g.Body(err))
			c.Abort()
			return
		}
		c.Next()
	}
}
