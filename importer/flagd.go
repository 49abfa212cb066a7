package importer

import "github.com/switchyard-dev/switchyard/evaluator"

// importFlagd reads flagd's own format, which is Switchyard's: the flags,
// shared evaluators and metadata pass through unchanged. With skipInvalid,
// a flag that fails validation is reported and left out instead of
// failing the file.
func importFlagd(content []byte, skipInvalid bool, c *converted) error {
	parse := evaluator.ParseDocument
	if skipInvalid {
		parse = evaluator.ParseFlagFile
	}
	doc, err := parse(content)
	if err != nil {
		return err
	}
	c.doc.Evaluators = doc.Evaluators
	c.doc.Metadata = doc.Metadata
	for _, key := range sortedKeys(doc.Flags) {
		f := doc.Flags[key]
		if f.Invalid != "" {
			c.note(key, "flags."+key, SeverityUnsupported, "not imported: %s", f.Invalid)
			continue
		}
		if err := c.add(key, "flags."+key, f); err != nil {
			return err
		}
	}
	return nil
}
