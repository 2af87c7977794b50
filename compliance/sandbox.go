package compliance

import "fmt"

// sandboxChecks: 2.2.6 (the seccomp policy and its mode) and 7.2.5 (the
// workers' account).
func sandboxChecks(s *Snapshot) []Check {
	var out []Check
	mode := ev("config", "sandbox_mode = %q", s.Settings.SandboxMode)
	switch s.Settings.SandboxMode {
	case "kill":
		out = append(out, check("sandbox.mode", "workers", Pass, "a forbidden system call kills the worker", mode))
	case "errno":
		out = append(out, check("sandbox.mode", "workers", Warn, "a forbidden system call only fails (EPERM): an exploit may go on probing", mode))
	default:
		out = append(out, check("sandbox.mode", "workers", Fail, "no system call filter", mode))
	}
	if s.WorkersErr != "" {
		return append(out,
			check("sandbox.confinement", "workers", NA, "workers unknown: "+s.WorkersErr),
			check("sandbox.worker_user", "workers", NA, "workers unknown: "+s.WorkersErr))
	}
	if len(s.Workers) == 0 {
		return append(out,
			check("sandbox.confinement", "workers", NA, "no worker running", ev("status", "no worker")),
			check("sandbox.worker_user", "workers", NA, "no worker running", ev("status", "no worker")))
	}
	for _, w := range s.Workers {
		subject := fmt.Sprintf("worker %d (pid %d)", w.ID, w.PID)
		if w.Err != "" {
			out = append(out,
				check("sandbox.confinement", subject, NA, "cannot read /proc: "+w.Err, ev("status", "run_state = %s", w.RunState)),
				check("sandbox.worker_user", subject, NA, "cannot read /proc: "+w.Err))
			continue
		}
		e := []Evidence{
			ev("/proc", "%d threads, seccomp = %d (lowest), no_new_privs = %t (all threads)", w.Threads, w.Seccomp, w.NoNewPrivs),
			ev("status", "run_state = %s", w.RunState),
		}
		switch {
		case w.Threads == 0:
			out = append(out, check("sandbox.confinement", subject, NA, "no thread listed", e...))
		case w.Seccomp == 2 && w.NoNewPrivs:
			out = append(out, check("sandbox.confinement", subject, Pass, "seccomp filter and no_new_privs on every thread", e...))
		case w.Seccomp != 2:
			out = append(out, check("sandbox.confinement", subject, Fail, "a thread runs without the seccomp filter", e...))
		default:
			out = append(out, check("sandbox.confinement", subject, Fail, "a thread runs without no_new_privs", e...))
		}
		ue := []Evidence{
			ev("/proc", "effective uid %d, gid %d", w.UID, w.GID),
			ev("config", "worker_user = %q, worker_allow_root = %t", s.Settings.WorkerUser, s.Settings.WorkerAllowRoot),
		}
		switch {
		case w.UID == 0:
			out = append(out, check("sandbox.worker_user", subject, Fail, "the worker runs as root", ue...))
		case w.GID == 0:
			out = append(out, check("sandbox.worker_user", subject, Warn, "the worker runs with group root", ue...))
		default:
			out = append(out, check("sandbox.worker_user", subject, Pass, fmt.Sprintf("runs as uid %d", w.UID), ue...))
		}
	}
	return out
}
