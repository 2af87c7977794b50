package config

import (
	"github.com/sozu-go/sozu/proto/state"
)

// identifier reports at p (its value, or the key itself when atKey) an
// identifier that the state would refuse (state.CheckIdentifier: UTF-8,
// no control, format or separator character, at most
// state.MaxIdentifierBytes), so that the configuration file gets the
// answer the command socket gives, with a line and column. It reports
// whether s passed.
func (b *builder) identifier(p string, atKey bool, s string) bool {
	err := state.CheckIdentifier(s)
	if err == nil {
		return true
	}
	if atKey {
		b.errs.atKey(p, "%v", err)
	} else {
		b.errs.at(p, "%v", err)
	}
	return false
}

// tags checks the keys and values of a frontend's tags table at p.
func (b *builder) tags(p string, m map[string]string) {
	for _, k := range sortedKeys(m) {
		if b.identifier(joinKey(p, k), true, k) {
			b.identifier(joinKey(p, k), false, m[k])
		}
	}
}
