package evaluator

import (
	"maps"

	"github.com/switchyard-dev/switchyard"
)

// Export returns revision r, runtime flags included, as a flagd document
// that flagd itself can load.
func Export(r *switchyard.Revision, mode string) switchyard.Document {
	flags := RuntimeFlags(r, mode)
	maps.Copy(flags, r.Flags)
	return switchyard.Document{Schema: switchyard.FlagdSchema, Flags: flags, Evaluators: r.Evaluators, Metadata: r.Metadata}
}
