//go:build race

package server

// raceEnabled says the race detector is on. sync.Pool then drops what it
// is given at random, so allocation counts vary from run to run.
const raceEnabled = true
