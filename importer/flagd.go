package importer

import "github.com/switchyard-dev/switchyard/evaluator"

// importFlagd reads flagd's own format, which is Switchyard's: the flags,
// shared evaluators and metadata pass through unchanged.
func importFlagd(content []byte, c *converted) error {
	doc, err := evaluator.ParseDocument(content)
	if err != nil {
		return err
	}
	c.doc.Evaluators = doc.Evaluators
	c.doc.Metadata = doc.Metadata
	for _, key := range sortedKeys(doc.Flags) {
		if err := c.add(key, "flags."+key, doc.Flags[key]); err != nil {
			return err
		}
	}
	return nil
}
