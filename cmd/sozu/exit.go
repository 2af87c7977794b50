package main

import (
	"context"
	"errors"
	"io/fs"
	"strings"

	"github.com/sozu-go/sozu/proto/command"
)

// Exit codes of the sozu binary (sysexits.h values where one fits). They are
// part of the CLI's contract: scripts test them.
const (
	exitOK          = 0  // done; the supervisor answered OK
	exitFailure     = 1  // the supervisor answered FAILURE (or an undecodable answer)
	exitUsage       = 2  // bad command line
	exitUnavailable = 69 // supervisor unreachable, connection lost, or -t passed
	exitNoPerm      = 77 // permission denied (socket, config file, "unauthorized:")
	exitConfig      = 78 // invalid configuration file
)

// exitCodeDoc documents the codes in `sozu help`.
const exitCodeDoc = `exit codes:
  0   ok
  1   the supervisor answered FAILURE
  2   usage error (unknown verb or flag, missing or invalid value, unusable file)
  69  supervisor unreachable, connection lost, or no answer within -t
  77  permission denied (socket, configuration or certificate file, or "unauthorized:" answer)
  78  invalid configuration file`

// configError is a configuration file that could not be loaded.
type configError struct {
	path string
	err  error
}

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// exitCodeFor maps an error of the CLI to its exit code.
func exitCodeFor(err error) int {
	var (
		ue *usageError
		fe *fileError
		ce *configError
		cn *ConnError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, fs.ErrPermission):
		return exitNoPerm
	case errors.As(err, &fe):
		return exitUsage
	case errors.As(err, &ce):
		return exitConfig
	case errors.As(err, &cn):
		if cn.Op == "connect" || errors.Is(err, context.DeadlineExceeded) || cn.lost() {
			return exitUnavailable
		}
		return exitFailure // undecodable or oversized frame: a protocol error
	default:
		return exitFailure
	}
}

// exitCodeForResponse maps a terminal response to the exit code.
func exitCodeForResponse(r *command.Response) int {
	switch {
	case r.GetStatus() == command.ResponseStatus_OK:
		return exitOK
	case strings.HasPrefix(r.GetMessage(), "unauthorized:"):
		return exitNoPerm
	default:
		return exitFailure
	}
}
