package sandbox

import "github.com/sozu-go/sozu/sandbox/account"

// LookupAccount resolves an account as the supervisor does (account.Lookup)
// for the tests that drop to it: the lookup reads the user database, which
// is the supervisor's business, so it is not part of this package.
func LookupAccount(userName, groupName string) (Account, error) {
	a, err := account.Lookup(userName, groupName)
	return Account(a), err
}
