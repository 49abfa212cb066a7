package evaluator

import (
	"maps"

	"github.com/switchyard-dev/switchyard"
)

// Export returns revision r, runtime flags included, as a flagd document
// that flagd itself can load.
func Export(r *switchyard.Revision, mode string) switchyard.Document {
	runtime := RuntimeFlags(r, mode)
	flags := make(map[string]switchyard.Flag, len(runtime)+len(r.Flags))
	maps.Copy(flags, runtime)
	for key, f := range r.Flags {
		// A flag file's invalid flag is not flagd's format; the file has it.
		if f.Invalid == "" {
			flags[key] = f
		}
	}
	return switchyard.Document{Schema: switchyard.FlagdSchema, Flags: flags, Evaluators: r.Evaluators, Metadata: r.Metadata}
}
