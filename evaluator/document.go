package evaluator

import (
	"encoding/json"
	"maps"
)

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

// Export returns revision r, runtime flags included, as a flagd document
// that flagd itself can load.
func Export(r *Revision, mode string) Document {
	flags := RuntimeFlags(r, mode)
	maps.Copy(flags, r.Flags)
	return Document{Schema: FlagdSchema, Flags: flags, Evaluators: r.Evaluators, Metadata: r.Metadata}
}

// ImportFlags adds the document's general flags to the revision, replacing
// flags with the same key, and merges its evaluators and metadata. The
// result is validated like any change: one bad flag refuses the import.
func ImportFlags(doc Document) Mutation {
	keys := make([]string, 0, len(doc.Flags))
	for k := range doc.Flags {
		keys = append(keys, k)
	}
	return Mutation{
		Action: "import_flags",
		Target: "flags",
		apply: func(next *Revision) error {
			if len(doc.Flags) == 0 {
				return Errorf(CodeInvalidRequest, "the document defines no flags")
			}
			if next.Flags == nil {
				next.Flags = map[string]Flag{}
			}
			maps.Copy(next.Flags, doc.Flags)
			if len(doc.Evaluators) > 0 {
				if next.Evaluators == nil {
					next.Evaluators = map[string]json.RawMessage{}
				}
				maps.Copy(next.Evaluators, doc.Evaluators)
			}
			if len(doc.Metadata) > 0 {
				if next.Metadata == nil {
					next.Metadata = map[string]any{}
				}
				maps.Copy(next.Metadata, doc.Metadata)
			}
			return nil
		},
		view: func(r *Revision) any {
			flags := map[string]any{}
			for _, k := range keys {
				if f, ok := r.Flags[k]; ok {
					flags[k] = f
				} else {
					flags[k] = nil
				}
			}
			return map[string]any{"flags": flags}
		},
	}
}
