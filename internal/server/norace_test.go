//go:build !race

package server

// raceEnabled says the race detector is on (race_test.go).
const raceEnabled = false
