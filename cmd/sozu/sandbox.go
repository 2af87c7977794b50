package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/sandbox"
)

// workerConfinement is what `sozu sandbox` reports for one worker, read
// from /proc on this host (the CLI must run where the proxy runs).
type workerConfinement struct {
	ID         uint32 `json:"id"`
	PID        int32  `json:"pid"`
	Threads    int    `json:"threads"`
	UID        int    `json:"uid"`
	GID        int    `json:"gid"`
	NoNewPrivs bool   `json:"no_new_privs"` // on every thread
	Seccomp    int    `json:"seccomp"`      // lowest mode over the threads: 2 = filter
	Confined   bool   `json:"confined"`     // every thread: seccomp 2 and no_new_privs
	Error      string `json:"error,omitempty"`
}

// runSandbox lists the workers (list_workers), then reads each one's
// threads from /proc: uid, gid, no_new_privs and seccomp state.
func runSandbox(a *app, inv *invocation) int {
	cfg, c, code := a.connect(inv)
	if c == nil {
		return code
	}
	defer c.Close()
	ctx, cancel := deadline(inv, cfg.timeout)
	defer cancel()
	resp, err := c.Do(ctx, &command.Request{RequestType: &command.Request_ListWorkers{ListWorkers: &command.ListWorkers{}}}, nil)
	if err != nil {
		return a.fail(inv, err)
	}
	if resp.GetStatus() != command.ResponseStatus_OK {
		return a.answer(inv, resp)
	}
	var out []workerConfinement
	all := true
	for _, w := range resp.GetContent().GetWorkers().GetVec() {
		out = append(out, confinementOf(w))
		all = all && out[len(out)-1].Confined
	}
	code = exitOK
	if !all {
		code = exitFailure
	}
	if inv.json {
		doc, err := json.MarshalIndent(map[string]any{"status": statusWord(all), "workers": out}, "", "  ")
		if err != nil {
			return a.fail(inv, err)
		}
		a.stdout.Write(append(doc, '\n'))
		return code
	}
	var b strings.Builder
	tw := newTable(&b)
	fmt.Fprintln(tw, "WORKER\tPID\tTHREADS\tUID\tGID\tNO_NEW_PRIVS\tSECCOMP\tCONFINED")
	for _, w := range out {
		if w.Error != "" {
			fmt.Fprintf(tw, "%d\t%d\t-\t-\t-\t-\t-\tno (%s)\n", w.ID, w.PID, cleanText(w.Error, true))
			continue
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", w.ID, w.PID, w.Threads, w.UID, w.GID,
			yesNo(w.NoNewPrivs), seccompWord(w.Seccomp), yesNo(w.Confined))
	}
	tw.Flush()
	fmt.Fprint(a.stdout, b.String())
	return code
}

func confinementOf(w *command.WorkerInfo) workerConfinement {
	wc := workerConfinement{ID: w.GetId(), PID: w.GetPid(), Seccomp: 2, NoNewPrivs: true}
	threads, err := sandbox.Status(int(w.GetPid()))
	if err != nil {
		wc.Error, wc.Seccomp, wc.NoNewPrivs = err.Error(), 0, false
		return wc
	}
	wc.Threads = len(threads)
	for i, t := range threads {
		if i == 0 {
			wc.UID, wc.GID = t.UIDs[1], t.GIDs[1]
		}
		wc.NoNewPrivs = wc.NoNewPrivs && t.NoNewPrivs
		wc.Seccomp = min(wc.Seccomp, t.Seccomp)
	}
	wc.Confined = len(threads) > 0 && wc.NoNewPrivs && wc.Seccomp == 2
	return wc
}

func statusWord(ok bool) string {
	if ok {
		return "OK"
	}
	return "FAILURE"
}

func seccompWord(m int) string {
	switch m {
	case 0:
		return "off"
	case 1:
		return "strict"
	case 2:
		return "filter"
	}
	return fmt.Sprint(m)
}
