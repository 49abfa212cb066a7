package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http/httptest"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/client"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// demoServer starts a demo Switchyard for an example and returns its URL
// (yours is e.g. http://127.0.0.1:8080) and what stops it.
func demoServer() (string, func()) {
	logger := slog.New(slog.DiscardHandler)
	core := control.New(logger, control.Config{Mode: switchyard.ModeDemo}, memory.NewDemo())
	ts := httptest.NewServer(server.New(logger, core, server.Config{Auth: server.NewAuthenticator([]server.Token{
		{Operator: switchyard.Operator{Name: "alice", Role: switchyard.RoleAdmin}, Secret: adminToken},
		{Operator: switchyard.Operator{Name: "victor", Role: switchyard.RoleViewer}, Secret: viewerToken},
	})}))
	return ts.URL, ts.Close
}

func ExampleClient_Status() {
	serverURL, stop := demoServer()
	defer stop()

	c, err := client.New(serverURL, client.WithToken(viewerToken)) // a viewer's token is enough to read
	if err != nil {
		log.Fatal(err)
	}
	st, err := c.Status(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("revision %d, profile %s, mastery %s, exam mode %t\n",
		st.Revision, st.Profile, st.Modules["mastery"].Version, st.Flags.ExamMode)
	// Output: revision 1, profile primary, mastery v1, exam mode false
}

// A change carries its phrase and a reason, and here the revision it was
// based on: if another operator changed the runtime meanwhile, it is
// refused with REVISION_CONFLICT instead of applied to a state nobody
// looked at.
func ExampleClient_SetSystemFlag() {
	serverURL, stop := demoServer()
	defer stop()

	ctx := context.Background()
	c, err := client.New(serverURL, client.WithToken(adminToken))
	if err != nil {
		log.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		log.Fatal(err)
	}
	applied, err := c.SetSystemFlag(ctx, switchyard.ExamMode, true, client.Write{
		Phrase:     switchyard.SystemFlagPhrase(switchyard.ExamMode, true), // ENABLE EXAM MODE
		Reason:     "final exams 09:00-12:00",
		IfRevision: st.Revision,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("exam mode %t at revision %d (audit entry %d)\n",
		applied.Status.Flags.ExamMode, applied.Status.Revision, applied.AuditSeq)

	// The same write again is based on a revision that is gone.
	_, err = c.SetSystemFlag(ctx, switchyard.ExamMode, false, client.Write{
		Phrase:     switchyard.SystemFlagPhrase(switchyard.ExamMode, false),
		Reason:     "exams over",
		IfRevision: st.Revision,
	})
	var e *switchyard.Error
	if errors.As(err, &e) && e.Code == switchyard.CodeRevisionConflict {
		fmt.Println("refused:", e.Code, "current revision", e.Fields["current_revision"])
	}
	// Output:
	// exam mode true at revision 2 (audit entry 1)
	// refused: REVISION_CONFLICT current revision 2
}

// The audit log is read page by page, newest first.
func ExampleClient_Audit() {
	serverURL, stop := demoServer()
	defer stop()

	ctx := context.Background()
	c, err := client.New(serverURL, client.WithToken(adminToken))
	if err != nil {
		log.Fatal(err)
	}
	for _, profile := range []string{"fallback", "primary"} {
		w := client.Write{Phrase: switchyard.ProfilePhrase(profile), Reason: "drill"}
		if _, err := c.SetProfile(ctx, profile, w); err != nil {
			log.Fatal(err)
		}
	}
	for q := (client.AuditQuery{Limit: 1}); ; {
		page, err := c.Audit(ctx, q)
		if err != nil {
			log.Fatal(err)
		}
		for _, e := range page.Entries {
			fmt.Println(e.Seq, e.Action, e.Outcome, string(e.After))
		}
		if page.NextBefore == 0 {
			break
		}
		q.Before = page.NextBefore
	}
	// Output:
	// 2 set_profile applied {"profile":"primary"}
	// 1 set_profile applied {"profile":"fallback"}
}

// fourEyesServer starts a demo Switchyard whose policy asks another
// admin's approval of every system flag change, with two admins: alice
// (adminToken) and bob (approverToken).
func fourEyesServer() (string, func()) {
	logger := slog.New(slog.DiscardHandler)
	policy := control.Policy{"set_flag": {Approvals: 1}}
	core := control.New(logger, control.Config{Mode: switchyard.ModeDemo, Approvals: policy}, memory.NewDemo())
	ts := httptest.NewServer(server.New(logger, core, server.Config{Auth: server.NewAuthenticator([]server.Token{
		{Operator: switchyard.Operator{Name: "alice", Role: switchyard.RoleAdmin}, Secret: adminToken},
		{Operator: switchyard.Operator{Name: "bob", Role: switchyard.RoleAdmin}, Secret: approverToken},
	})}))
	return ts.URL, ts.Close
}

// Exam mode, proposed by one admin to turn on at 09:00 and off at 12:00,
// is applied only once another admin has read what it does and approved
// it with its phrase.
func ExampleClient_ProposeChange() {
	serverURL, stop := fourEyesServer()
	defer stop()

	ctx := context.Background()
	alice, err := client.New(serverURL, client.WithToken(adminToken))
	if err != nil {
		log.Fatal(err)
	}
	bob, err := client.New(serverURL, client.WithToken(approverToken))
	if err != nil {
		log.Fatal(err)
	}
	nine := time.Now().Add(24 * time.Hour).Truncate(time.Hour)
	noon := nine.Add(3 * time.Hour)
	phrase := switchyard.SystemFlagPhrase(switchyard.ExamMode, true) // ENABLE EXAM MODE
	cr, err := alice.ProposeChange(ctx, client.Proposal{
		Action:   "set_flag",
		Fields:   map[string]any{"flag": switchyard.ExamMode, "value": true},
		ApplyAt:  &nine,
		RevertAt: &noon,
	}, client.Write{Phrase: phrase, Reason: "final exams 09:00-12:00", IdempotencyKey: client.NewIdempotencyKey()})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("change", cr.ID, cr.State, "by", cr.Proposer)

	// The proposer cannot approve their own change.
	_, err = alice.ApproveChange(ctx, cr.ID, client.Write{Phrase: phrase, Reason: "looks right"})
	fmt.Println("self-approval:", switchyard.ErrorCode(err))

	// Another admin reads what it does, and approves it with its phrase.
	shown, err := bob.ChangeRequest(ctx, cr.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("it changes", shown.Diff.Changed)
	cr, err = bob.ApproveChange(ctx, cr.ID, client.Write{Phrase: shown.Phrase, Reason: "checked with the exams office"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("change", cr.ID, cr.State, "by", cr.Approvals[0].Actor, "applies at 09:00:", cr.ApplyDue().Equal(nine))
	// Output:
	// change 1 proposed by alice
	// self-approval: FORBIDDEN
	// it changes [EXAM_MODE]
	// change 1 approved by bob applies at 09:00: true
}
