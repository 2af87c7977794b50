// Package account resolves the account workers drop to (worker_user,
// worker_group) to numeric ids, reading the user database. The supervisor
// calls it before it starts workers; workers get the ids and never read the
// user database (docs/sandbox.md).
package account

import (
	"fmt"
	"os/user"
	"strconv"
)

// DefaultUser is the account a worker drops to when worker_user is not
// set. A dedicated account (docs/sandbox.md) is better: nobody may own
// files, and other daemons may run as nobody too.
const DefaultUser = "nobody"

// Account is a resolved account: as configured, and its ids.
type Account struct {
	User  string // as configured: name or numeric uid
	Group string // as configured, or the user's primary group
	UID   int
	GID   int
}

func (a Account) String() string {
	return fmt.Sprintf("%s(%d):%s(%d)", a.User, a.UID, a.Group, a.GID)
}

// Lookup resolves userName and groupName, each a name or a numeric
// id. userName "" is DefaultUser; groupName "" is the user's primary group.
// A numeric uid that names no account is accepted only with an explicit
// group. It reads the user database (files, NSS): call it before sandbox.Load.
func Lookup(userName, groupName string) (Account, error) {
	if userName == "" {
		userName = DefaultUser
	}
	a := Account{User: userName, Group: groupName}
	u, uerr := lookupUser(userName)
	switch {
	case uerr == nil:
		a.UID, _ = strconv.Atoi(u.Uid)
	case isNumeric(userName):
		a.UID, _ = strconv.Atoi(userName)
	default:
		return Account{}, fmt.Errorf("sandbox: worker_user %q: %w", userName, uerr)
	}
	if groupName == "" {
		if u == nil {
			return Account{}, fmt.Errorf("sandbox: worker_user %q has no account entry: set worker_group", userName)
		}
		a.GID, _ = strconv.Atoi(u.Gid)
		a.Group = u.Gid
		if g, err := user.LookupGroupId(u.Gid); err == nil {
			a.Group = g.Name
		}
		return a, nil
	}
	g, err := user.LookupGroup(groupName)
	switch {
	case err == nil:
		a.GID, _ = strconv.Atoi(g.Gid)
	case isNumeric(groupName):
		a.GID, _ = strconv.Atoi(groupName)
	default:
		return Account{}, fmt.Errorf("sandbox: worker_group %q: %w", groupName, err)
	}
	return a, nil
}

func lookupUser(name string) (*user.User, error) {
	u, err := user.Lookup(name)
	if err == nil || !isNumeric(name) {
		return u, err
	}
	return user.LookupId(name)
}

func isNumeric(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && strconv.Itoa(n) == s
}
