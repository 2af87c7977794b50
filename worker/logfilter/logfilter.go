// Package logfilter parses the log filter of the `Logging` verb and of
// `log_level`: upstream's env_logger-style spec, reduced to one level.
package logfilter

import (
	"fmt"
	"strings"

	"github.com/sirupsen/logrus"
)

// Parse reads a filter such as "info", "debug", "warn,sozu=debug" or
// "sozu::http=trace". Directives are separated by commas; each is a level or
// target=level. Targets name upstream's Rust modules and have no meaning
// here, so the result is one level: the bare level if the spec has one,
// otherwise the most verbose target level. "off" maps to panic level (as
// quiet as logrus gets). Every invalid directive is reported, one per line
// after a leading "- ", so the caller can print upstream's
// "Error parsing logging filter:\n- …" message.
func Parse(spec string) (logrus.Level, error) {
	var problems []string
	bare, haveBare := logrus.InfoLevel, false
	most, haveTarget := logrus.PanicLevel, false
	for _, d := range strings.Split(spec, ",") {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		target, lvlText, hasTarget := strings.Cut(d, "=")
		if !hasTarget {
			lvlText, target = d, ""
		}
		if hasTarget && strings.TrimSpace(target) == "" {
			problems = append(problems, fmt.Sprintf("empty target in directive %q", d))
			continue
		}
		lvl, err := level(strings.TrimSpace(lvlText))
		if err != nil {
			problems = append(problems, fmt.Sprintf("invalid level %q in directive %q", lvlText, d))
			continue
		}
		if hasTarget {
			if !haveTarget || lvl > most {
				most = lvl
			}
			haveTarget = true
		} else {
			bare, haveBare = lvl, true
		}
	}
	if len(problems) > 0 {
		return 0, fmt.Errorf("- %s", strings.Join(problems, "\n- "))
	}
	switch {
	case haveBare:
		return bare, nil
	case haveTarget:
		return most, nil
	default:
		return 0, fmt.Errorf("- empty filter")
	}
}

func level(s string) (logrus.Level, error) {
	switch strings.ToLower(s) {
	case "off":
		return logrus.PanicLevel, nil
	case "error":
		return logrus.ErrorLevel, nil
	case "warn", "warning":
		return logrus.WarnLevel, nil
	case "info":
		return logrus.InfoLevel, nil
	case "debug":
		return logrus.DebugLevel, nil
	case "trace":
		return logrus.TraceLevel, nil
	}
	return 0, fmt.Errorf("unknown level %q", s)
}

// unheeded returns the module directives (target=level) of a valid spec
// whose level is not the one level Parse gives it: the modules name
// upstream's Rust code, so each such directive has no effect here ("info,
// sozu::http=debug" logs everything at info), and that level's name.
// nil for an invalid spec.
func unheeded(spec string) (name string, directives []string) {
	lvl, err := Parse(spec)
	if err != nil {
		return "", nil
	}
	name = lvl.String()
	if lvl == logrus.PanicLevel {
		name = "off"
	}
	for _, d := range strings.Split(spec, ",") {
		d = strings.TrimSpace(d)
		_, lvlText, hasTarget := strings.Cut(d, "=")
		if !hasTarget {
			continue
		}
		if l, err := level(strings.TrimSpace(lvlText)); err == nil && l != lvl {
			directives = append(directives, d)
		}
	}
	return name, directives
}

// Note says which directives of a valid spec have no effect (unheeded),
// or "" when all do, for the configuration check of log_level and the
// answer to a Logging request:
// "without effect: sozu::http=debug (module directives name upstream's
// Rust modules; the whole log is at info)".
func Note(spec string) string {
	lvl, un := unheeded(spec)
	if len(un) == 0 {
		return ""
	}
	return fmt.Sprintf("without effect: %s (module directives name upstream's Rust modules; the whole log is at %s)",
		strings.Join(un, ", "), lvl)
}
