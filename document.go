package switchyard

import "encoding/json"

// Document is a flag definition file in flagd's format: what import reads
// and export writes, so flags move between Switchyard and flagd unchanged.
type Document struct {
	Schema     string                     `json:"$schema,omitempty"`
	Flags      map[string]Flag            `json:"flags"`
	Evaluators map[string]json.RawMessage `json:"$evaluators,omitempty"`
	Metadata   map[string]any             `json:"metadata,omitempty"`
}

// FlagdSchema is the JSON schema flagd's flag definitions declare.
const FlagdSchema = "https://flagd.dev/schema/v0/flags.json"
