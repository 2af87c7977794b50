package config

import (
	"reflect"
	"slices"
	"strings"
)

// checkScopes reports keys written where they have no effect: an HTTPS-only
// key on an http listener, a hostname on a tcp cluster's frontend, … Upstream
// silently ignores most of these; here a key that would do nothing is an
// error, so an operator never believes a setting applies when it does not.
// Scopes are the `scope` tags in raw.go.
func checkScopes(errs *errorList, c *rawConfig) {
	for i, l := range c.Listeners {
		if l != nil && l.Protocol != nil {
			checkScope(errs, joinIndex("listeners", i), reflect.ValueOf(l).Elem(), l.Protocol.String(), "listeners")
		}
	}
	for id, cl := range c.Clusters {
		if cl == nil || cl.Protocol == nil {
			continue
		}
		p, proto := joinKey("clusters", id), cl.Protocol.String()
		checkScope(errs, p, reflect.ValueOf(cl).Elem(), proto, "clusters")
		for j, f := range cl.Frontends {
			if f != nil {
				checkScope(errs, joinIndex(joinKey(p, "frontends"), j), reflect.ValueOf(f).Elem(), proto, "clusters")
			}
		}
	}
}

// checkScope reports every set field of struct v whose scope tag does not
// list proto. Scoped fields are pointers, maps or slices (nil = not set).
func checkScope(errs *errorList, p string, v reflect.Value, proto, kind string) {
	t := v.Type()
	for i := range t.NumField() {
		scope := t.Field(i).Tag.Get("scope")
		if scope == "" || slices.Contains(strings.Split(scope, ","), proto) || v.Field(i).IsNil() {
			continue
		}
		errs.atKey(joinKey(p, t.Field(i).Tag.Get("toml")), "only valid for %s %s, not %s",
			strings.ReplaceAll(scope, ",", " and "), kind, proto)
	}
}
