//go:build !race

package crypto

// raceEnabled is true when the race detector is on: tests then thin out their
// exhaustive loops, which `make test` also runs in full without it.
const raceEnabled = false
