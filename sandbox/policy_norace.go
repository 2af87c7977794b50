//go:build !race

package sandbox

// raceRules are what a binary built with -race needs beyond baseRules
// (policy_race.go); a normal build needs nothing more.
var raceRules []Rule
