//go:build race

package sandbox

// raceRules are what a binary built with -race needs beyond baseRules:
// found by running a confined victim that races (TestVictimDataRace) in
// errno mode under strace. Nothing else differs: TestPolicyCoversWorkload
// shows the same calls with and without -race.
var raceRules = []Rule{
	{Syscall: "gettimeofday", Why: "the race runtime (ThreadSanitizer) timestamps a data race report with a raw system call"},
}
