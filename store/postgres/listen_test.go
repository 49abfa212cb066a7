package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

// TestListenReportsCommitsAndResyncsAfterReconnect runs the revision feed,
// commits, kills the feed's connection, commits again and checks that the
// feed reconnects and reports the head it missed or was told of.
func TestListenReportsCommitsAndResyncsAfterReconnect(t *testing.T) {
	u, schema, owner := newSchema(t)
	app := "switchyard_listen_" + schema
	f := openFixture(t, withParam(t, u, "application_name", app), schema, owner)
	heard := make(chan int64, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.store.Listen(ctx, func(rev *switchyard.Revision) { heard <- rev.Number }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Listen = %v", err)
		}
	})
	wait := func(want int64) {
		t.Helper()
		select {
		case n := <-heard:
			if n != want {
				t.Fatalf("feed reported %d, want %d", n, want)
			}
		case <-time.After(10 * time.Second): // bounds a failing test only
			t.Fatalf("feed never reported %d", want)
		}
	}
	apply := func() {
		t.Helper()
		if _, _, err := f.store.Apply(testContext(t), store.Change{Attempt: store.Attempt{Actor: "a"},
			Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)}); err != nil {
			t.Fatal(err)
		}
	}
	wait(1) // the head when listening starts
	apply()
	wait(2)

	var killed int
	if err := owner.QueryRow(testContext(t), `
		SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND query LIKE 'LISTEN%'`, app).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d feed connections, %v; want 1", killed, err)
	}
	apply()
	wait(3)
}
