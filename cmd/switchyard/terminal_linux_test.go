package main

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/switchyard-dev/switchyard/store/storetest"
)

// openTerminal opens a pseudo-terminal: term is the program's terminal,
// and the test types into and reads from control what a person would.
func openTerminal(t *testing.T) (term, control *os.File) {
	t.Helper()
	control, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { control.Close() })
	var unlock int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, control.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
		t.Fatalf("unlock the pseudo-terminal: %v", errno)
	}
	var n uint32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, control.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); errno != 0 {
		t.Fatalf("name the pseudo-terminal: %v", errno)
	}
	term, err = os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the terminal: %v", err)
	}
	return term, control
}

// atTerminal runs switchyard with args at a terminal whose operator types
// typed, and returns what the terminal showed.
func atTerminal(t *testing.T, env map[string]string, typed string, args ...string) (string, error) {
	t.Helper()
	term, control := openTerminal(t)
	if _, err := io.WriteString(control, typed); err != nil {
		t.Fatal(err)
	}
	shown := make(chan string, 1)
	go func() {
		// Reading ends with EIO once the terminal is closed and read out.
		b, _ := io.ReadAll(control)
		shown <- strings.ReplaceAll(string(b), "\r\n", "\n")
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := run(ctx, args, func(k string) string { return env[k] }, term, term, term)
	term.Close()
	return <-shown, err
}

// At a terminal the operator types the phrase at the prompt, and the
// output is coloured, unless NO_COLOR is set; elsewhere it never is.
func TestAtATerminal(t *testing.T) {
	env := operatorServer(t)
	shown, err := atTerminal(t, env, "ENABLE EXAM MODE\n", "exam-mode", "on", "--reason", "exams at the terminal")
	if err != nil {
		t.Fatalf("%v\n%s", err, shown)
	}
	for _, want := range []string{
		"To apply it, type: \x1b[01mENABLE EXAM MODE\x1b[0m\n> ",
		"EXAM_MODE  \x1b[39moff\x1b[0m  → \x1b[33mon\x1b[0m",
		"\x1b[32mapplied\x1b[0m: EXAM_MODE on at revision 2 (audit entry 1)\n",
	} {
		if !strings.Contains(shown, want) {
			t.Errorf("the terminal shows no %q:\n%q", want, shown)
		}
	}

	shown, err = atTerminal(t, env, "", "status")
	if err != nil || !strings.Contains(shown, "\x1b[33mON\x1b[0m") {
		t.Errorf("status at a terminal: %v\n%q", err, shown)
	}
	for _, noColour := range []map[string]string{with(env, "NO_COLOR", "1"), with(env, "TERM", "dumb")} {
		shown, err = atTerminal(t, noColour, "", "status")
		if err != nil || strings.Contains(shown, "\x1b[") || !strings.Contains(squeeze(shown), "EXAM_MODE ON\n") {
			t.Errorf("status with %v: %v\n%q", noColour, err, shown)
		}
	}

	// Ctrl-C at the prompt cancels the command; nothing is sent.
	term, control := openTerminal(t)
	var screen storetest.LogBuffer
	go func() { _, _ = io.Copy(&screen, control) }()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"freeze", "on", "--reason", "r"}, func(k string) string { return env[k] }, term, term, term)
	}()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(screen.String(), "> "); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no prompt in 10s:\n%q", screen.String())
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled prompt: %v, want context.Canceled", err)
	}
	term.Close()
	if entries := auditEntries(t, env); len(entries) != 1 {
		t.Errorf("the audit log holds %d entries, want the one change made", len(entries))
	}
}
