package config

import (
	"fmt"
	"reflect"
	"strings"
)

// Change is one global key whose value differs between the configuration
// a supervisor runs with and a configuration being reloaded, and that a
// reload cannot apply: the supervisor and its workers read it once, at
// start (worker_count, command_socket, worker_user, the audit sinks, …).
type Change struct {
	Key      string // the TOML key, e.g. "worker_count"
	Old, New string // the values, as TOML-ish text; secrets are never shown
}

func (c Change) String() string { return fmt.Sprintf("%s: %s → %s", c.Key, c.Old, c.New) }

// liveKeys are the top-level entries a reload applies: the listeners and
// the clusters (with their frontends, backends and certificates) become
// ordinary requests; they are not global settings.
var liveKeys = map[string]bool{"listeners": true, "clusters": true}

// pathKeys are the keys whose value is a path resolved against the
// configuration file's directory: they are compared resolved, so that the
// same relative path in a file elsewhere counts as a change.
var pathKeys = map[string]func(*Config) string{
	"command_socket":         func(c *Config) string { return c.CommandSocket },
	"saved_state":            func(c *Config) string { return c.SavedState },
	"pid_file_path":          func(c *Config) string { return c.PidFilePath },
	"audit_logs_target":      func(c *Config) string { return c.AuditLogsTarget },
	"audit_logs_json_target": func(c *Config) string { return c.AuditLogsJSONTarget },
	"audit_hmac_key_file":    func(c *Config) string { return c.Audit.HMACKeyFile },
}

// RestartChanges lists, in raw.go's key order, the global keys whose
// value in c differs from their value in running (the configuration the
// supervisor started with, defaults applied to both), which only a restart
// or an upgrade puts in force. Listeners and clusters are not globals: a
// reload diffs them as state. Both configurations must come from Load or
// Parse; a Config built otherwise has no raw form and reports nothing.
func (c *Config) RestartChanges(running *Config) []Change {
	if c == nil || running == nil || c.raw == nil || running.raw == nil {
		return nil
	}
	var out []Change
	nv, ov := reflect.ValueOf(c.raw).Elem(), reflect.ValueOf(running.raw).Elem()
	t := nv.Type()
	for i := range t.NumField() {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if key == "" || liveKeys[key] {
			continue
		}
		if resolved, ok := pathKeys[key]; ok {
			if o, n := resolved(running), resolved(c); o != n {
				out = append(out, Change{Key: key, Old: quoteOrUnset(o), New: quoteOrUnset(n)})
			}
			continue
		}
		o, n := ov.Field(i), nv.Field(i)
		if reflect.DeepEqual(o.Interface(), n.Interface()) {
			continue
		}
		out = append(out, Change{Key: key, Old: show(o), New: show(n)})
	}
	return out
}

func quoteOrUnset(s string) string {
	if s == "" {
		return "(unset)"
	}
	return fmt.Sprintf("%q", s)
}

// show renders a raw value for a Change: pointers followed, strings
// quoted, tables as {key = value, …}.
func show(v reflect.Value) string {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "(unset)"
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.String:
		return fmt.Sprintf("%q", v.String())
	case reflect.Struct:
		var parts []string
		for i := range v.NumField() {
			key, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("toml"), ",")
			if key == "" || !v.Type().Field(i).IsExported() {
				continue
			}
			parts = append(parts, key+" = "+show(v.Field(i)))
		}
		if len(parts) == 0 {
			return fmt.Sprint(v.Interface())
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range v.Len() {
			parts[i] = show(v.Index(i))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	if s, ok := v.Interface().(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprint(v.Interface())
}
