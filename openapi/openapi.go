// Package openapi holds the contract of every HTTP route Switchyard serves,
// embedded so the server's tests, documentation tools and clients read the
// same bytes the binary was built with.
package openapi

import _ "embed"

// Spec is openapi.yaml, the OpenAPI 3.0.3 description of the HTTP API. The
// server's tests validate every request and response against it, so it
// cannot drift from what is served.
//
//go:embed openapi.yaml
var Spec []byte
