//go:build race

package tcp

// raceEnabled: the race detector's sync.Pool drops a random quarter of
// Puts, so allocation counts do not hold under it.
const raceEnabled = true
