//go:build !linux

package peercred

import (
	"errors"
	"net"
)

// FromConn needs Linux (SO_PEERCRED); elsewhere it always fails.
func (p Proc) FromConn(conn *net.UnixConn) (Cred, error) {
	return Cred{}, errors.New("peercred: peer credentials are only supported on Linux")
}
