package compliance

import (
	"fmt"
	"slices"
)

// NotInForce is one key written in the configuration that has no effect
// (supervisor/config: Config.Warnings).
type NotInForce struct {
	Key        string // dotted key path, with its position: "config.toml:12:1: listeners[0].h2_max_ping_per_window"
	Why        string
	Protection string // the protection an operator would believe on; "" for none
}

// configChecks: 2.2.6. A protection that the configuration sets but the
// proxy does not enforce misleads whoever reads the configuration (an
// assessor included): each such protection fails; other keys without
// effect are a warning.
func configChecks(s *Snapshot) []Check {
	if len(s.Settings.NotInForce) == 0 {
		return []Check{check("config.in_force", "configuration", Pass, "every key written is in force",
			ev("config", "config check: no warning"))}
	}
	byProtection := map[string][]Evidence{}
	var others []Evidence
	for _, n := range s.Settings.NotInForce {
		e := ev("config", "%s: not in force: %s", n.Key, n.Why)
		if n.Protection == "" {
			others = append(others, e)
			continue
		}
		byProtection[n.Protection] = append(byProtection[n.Protection], e)
	}
	var out []Check
	names := make([]string, 0, len(byProtection))
	for p := range byProtection {
		names = append(names, p)
	}
	slices.Sort(names)
	for _, p := range names {
		out = append(out, check("config.in_force", p, Fail,
			fmt.Sprintf("%s configured but not enforced by this proxy", p), byProtection[p]...))
	}
	if len(others) > 0 {
		out = append(out, check("config.in_force", "configuration", Warn,
			fmt.Sprintf("%d %s written without effect (see sozu config check)", len(others), plural(len(others), "key", "keys")), others...))
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
