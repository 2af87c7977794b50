package compliance

import (
	"fmt"
	"io/fs"
	"strings"
)

// accessChecks: 7.2.1, 7.2.2, 8.2.2 — who may reach the command socket,
// and with which role.
func accessChecks(s *Snapshot) []Check {
	st := s.Settings
	var out []Check

	// 7.2.1: the socket's mode is the first gate.
	sock := s.Socket
	subject := "command socket " + sock.Path
	switch {
	case sock.Err != "":
		out = append(out, check("access.socket_mode", subject, NA, "cannot examine the socket: "+sock.Err))
	default:
		perm := sock.Mode.Perm()
		e := []Evidence{ev("lstat", "mode %04o, type %s", perm, fileType(sock.Mode)), ev("config", "command_socket_group = %q", st.SocketGroup)}
		switch {
		case sock.Mode.Type() != fs.ModeSocket:
			out = append(out, check("access.socket_mode", subject, Fail, "not a unix socket", e...))
		case perm&0o007 != 0:
			out = append(out, check("access.socket_mode", subject, Fail, fmt.Sprintf("mode %04o lets any local user connect", perm), e...))
		case perm&0o070 != 0 && st.SocketGroup == "":
			out = append(out, check("access.socket_mode", subject, Fail, fmt.Sprintf("mode %04o opens the socket to a group no configuration names", perm), e...))
		case perm&0o070 != 0:
			out = append(out, check("access.socket_mode", subject, Pass, fmt.Sprintf("mode %04o: owner and group %s only", perm, st.SocketGroup), e...))
		default:
			out = append(out, check("access.socket_mode", subject, Pass, fmt.Sprintf("mode %04o: owner only", perm), e...))
		}
	}

	// 7.2.2: a read-only role for those who only look.
	ro := len(st.ReadonlyUIDs)+len(st.ReadonlyGIDs) > 0
	roEv := []Evidence{
		ev("config", "command_readonly_uids = %s", uints(st.ReadonlyUIDs)),
		ev("config", "command_readonly_gids = %s", uints(st.ReadonlyGIDs)),
	}
	if ro {
		out = append(out, check("access.readonly_role", "command socket", Pass, "a read-only role is granted", roEv...))
	} else {
		out = append(out, check("access.readonly_role", "command socket", Warn,
			"no read-only role: everyone admitted may change the configuration", roEv...))
	}

	// 8.2.2: without lists, only root and the supervisor's own uid are
	// admitted: shared accounts, an operator is not told apart.
	adEv := []Evidence{
		ev("config", "command_allowed_uids = %s", uints(st.AllowedUIDs)),
		ev("config", "command_allowed_gids = %s", uints(st.AllowedGIDs)),
	}
	if len(st.AllowedUIDs)+len(st.AllowedGIDs)+len(st.ReadonlyUIDs)+len(st.ReadonlyGIDs) == 0 {
		out = append(out, check("access.admission", "command socket", Warn,
			"no admission list: only root and the supervisor's uid are admitted, shared accounts", adEv...))
	} else {
		out = append(out, check("access.admission", "command socket", Pass,
			"admission lists name the operators; each is audited under its own uid", adEv...))
	}
	return out
}

func uints(l []uint32) string {
	if len(l) == 0 {
		return "[] (not set)"
	}
	parts := make([]string, len(l))
	for i, v := range l {
		parts[i] = fmt.Sprint(v)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func fileType(m fs.FileMode) string {
	switch m.Type() {
	case 0:
		return "regular file"
	case fs.ModeDir:
		return "directory"
	case fs.ModeSocket:
		return "socket"
	case fs.ModeSymlink:
		return "symlink"
	}
	return m.Type().String()
}
