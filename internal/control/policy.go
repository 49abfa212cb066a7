package control

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Policy is the approval policy (four-eyes): for each action, as the audit
// log names it, how many other admins must approve a change before it
// applies. A direct write of such an action is refused with
// APPROVAL_REQUIRED: it must be proposed as a change request. The zero
// Policy asks for no approval, so every change applies at once.
type Policy map[string]Rule

// Rule is the policy of one action.
type Rule struct {
	// Approvals is how many distinct admins other than the proposer must
	// approve the change, 1 to MaxApprovals.
	Approvals int `json:"approvals"`
	// BreakGlass lets one admin make the change at once, directly, when
	// it only makes the system safer (turning EXAM_MODE, FREEZE_UPDATES
	// or ADMIN_FREEZE on; switching to the fallback profile): it is
	// applied and recorded as a change request whose approvals, after the
	// fact, are its review.
	BreakGlass bool `json:"break_glass"`
}

// MaxApprovals bounds the approvals a rule may ask for: each is a named
// admin, and a request keeps them all.
const MaxApprovals = 10

// Proposable lists the actions a change request may propose and a policy
// may name: every change of the runtime. The mode toggle is not one: it
// acts on the process that serves it, so a request for it could not be
// applied on behalf of the fleet.
var Proposable = []string{"set_flag", "set_profile", "set_override", "clear_override",
	"register_module", "update_profile", "import_flags"}

// ParsePolicy reads a policy file: a JSON object mapping each action to
// its rule, e.g. {"set_profile": {"approvals": 2, "break_glass": true}}.
func ParsePolicy(data []byte) (Policy, error) {
	var p Policy
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf(`must be a JSON object like {"set_profile": {"approvals": 2, "break_glass": true}}: %w`, err)
	}
	return p, p.Validate()
}

// RequireApproval returns the policy of --require-approval: one approval
// for each action named in the comma-separated list.
func RequireApproval(list string) (Policy, error) {
	p := Policy{}
	for _, action := range strings.Split(list, ",") {
		if action = strings.TrimSpace(action); action != "" {
			p[action] = Rule{Approvals: 1}
		}
	}
	return p, p.Validate()
}

// Validate refuses a policy naming an action that cannot be proposed or
// asking for a number of approvals out of range.
func (p Policy) Validate() error {
	for _, action := range slices.Sorted(maps.Keys(p)) {
		if !slices.Contains(Proposable, action) {
			return fmt.Errorf("action %q cannot require approval: use one of %s", action, strings.Join(Proposable, ", "))
		}
		if n := p[action].Approvals; n < 1 || n > MaxApprovals {
			return fmt.Errorf("action %q: approvals must be 1 to %d, not %d", action, MaxApprovals, n)
		}
	}
	return nil
}
