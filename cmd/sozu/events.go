package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sozu-go/sozu/proto/command"
)

// `sozu events` follows subscribe_events: the supervisor answers nothing
// but sends each event as a PROCESSING response whose message names its
// source ("main", or the id of the worker that saw it). The CLI prints one
// line per event, stamped with the time it received it (events carry no
// time of their own):
//
//	2026-12-06T07:49:02.123Z  main      CLUSTER_ADDED  cluster=shop
//	2026-12-06T07:49:03.456Z  worker 0  BACKEND_DOWN   cluster=shop backend=shop-0 address=10.0.0.10:8000
//
// and with --json one compact object per line (eventJSON). It stops:
//   - on SIGINT or SIGTERM, or when -t milliseconds have passed: exit 0;
//   - when the supervisor closes the connection after a
//     SOZU_STOP_REQUESTED event (the proxy stopped as asked): a note on
//     stderr, exit 0;
//   - when the connection ends without that event (the supervisor died, or
//     dropped this subscriber for falling 1024 events behind): a message
//     on stderr, exit 69, so a script following the events learns it
//     missed some;
//   - on a FAILURE answer (an "unauthorized:" one among them): exit 1 or 77.
const eventsDoc = "Prints one line per event (time received, source, kind, ids); with -j one JSON object per line.\n" +
	"Stops on SIGINT/SIGTERM or after -t MS (exit 0), when the proxy stops as asked (exit 0), or when\n" +
	"the connection ends otherwise (exit 69: events may have been missed)."

func buildSubscribeEvents(*values) (*command.Request, error) {
	return &command.Request{RequestType: &command.Request_SubscribeEvents{SubscribeEvents: &command.SubscribeEvents{}}}, nil
}

// follow runs a stream verb: it sends the request and prints each event
// until it is interrupted or the stream ends (see eventsDoc).
func (a *app) follow(inv *invocation) int {
	cfg, c, code := a.connect(inv)
	if c == nil {
		return code
	}
	defer c.Close()
	ctx := a.interrupted()
	var cancel context.CancelFunc
	if inv.timeoutSet && inv.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, inv.timeout)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	defer cancel()
	// Interrupting wakes the blocked read; it then ends the loop cleanly.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := c.Send(inv.req); err != nil {
		return a.fail(inv, err)
	}
	stopAsked := false
	for {
		resp, err := c.Recv()
		if err != nil {
			var ce *ConnError
			switch {
			case ctx.Err() != nil:
				return exitOK
			case stopAsked && errors.As(err, &ce) && ce.lost():
				fmt.Fprintln(a.stderr, "sozu "+inv.verb.path+": the proxy stopped")
				return exitOK
			case errors.As(err, &ce) && ce.lost():
				return a.fail(inv, fmt.Errorf("the supervisor at %s ended the event stream without stopping (it died, or dropped this subscriber for falling behind): events may have been missed: %w", cfg.socket, err))
			}
			return a.fail(inv, err)
		}
		if resp.GetStatus() != command.ResponseStatus_PROCESSING {
			return a.answer(inv, resp)
		}
		ev := resp.GetContent().GetEvent()
		if ev == nil {
			continue
		}
		if ev.GetKind() == command.EventKind_SOZU_STOP_REQUESTED {
			stopAsked = true
		}
		if err := writeEvent(a.stdout, time.Now(), resp.GetMessage(), ev, inv.json); err != nil {
			return exitOK // stdout closed (`sozu events | head`): nothing left to do
		}
	}
}

// interrupted returns a context done on SIGINT or SIGTERM (tests replace
// a.signals).
func (a *app) interrupted() context.Context {
	if a.signals != nil {
		return a.signals
	}
	ctx, _ := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	return ctx
}

func writeEvent(w io.Writer, at time.Time, source string, ev *command.Event, asJSON bool) error {
	var line []byte
	if asJSON {
		var err error
		if line, err = eventJSON(at, source, ev); err != nil {
			return nil // not expressible (invalid UTF-8): skip it rather than stop
		}
	} else {
		line = []byte(eventLine(at, source, ev))
	}
	_, err := w.Write(line)
	return err
}

// eventSource is how a line names the emitter: "main" or "worker N".
func eventSource(source string) string {
	if source == "main" || source == "" {
		return "main"
	}
	return "worker " + cleanText(source, false)
}

// eventLine is the text line of an event: time (UTC, milliseconds),
// source, kind, then the ids it carries as key=value. Strings from the
// supervisor are cleaned of control characters. Pure.
func eventLine(at time.Time, source string, ev *command.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-8s  %s", at.UTC().Format("2006-01-02T15:04:05.000Z"), eventSource(source), ev.GetKind())
	if ev.ClusterId != nil {
		b.WriteString(" cluster=" + eventValue(ev.GetClusterId()))
	}
	if ev.BackendId != nil {
		b.WriteString(" backend=" + eventValue(ev.GetBackendId()))
	}
	if ev.Address != nil {
		b.WriteString(" address=" + ev.GetAddress().Display())
	}
	if md := ev.GetMetricDetail(); md != nil {
		fmt.Fprintf(&b, " detail=%s->%s (%s)", md.GetPreviousEffective(), md.GetEffective(), cleanText(md.GetTransitionKind(), false))
	}
	b.WriteByte('\n')
	return b.String()
}

// eventValue is an id as a line shows it: cleaned (cleanText), and
// between double quotes ('"' and '\\' escaped) when it is empty or holds
// a space, '=' or '"', which an id may: "shop backend=db" would otherwise
// read as two fields, the second forged.
func eventValue(s string) string {
	c := cleanText(s, false)
	if c != "" && !strings.ContainsAny(c, " =\"") {
		return c
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(c) + `"`
}

// eventRecord is the --json object of one event. Field order is the
// output order; absent ids are left out.
type eventRecord struct {
	Time         string `json:"time"`   // RFC 3339, UTC, milliseconds: when the CLI received it
	Source       string `json:"source"` // "main" or "worker N"
	Kind         string `json:"kind"`   // EventKind name
	ClusterID    string `json:"cluster_id,omitempty"`
	BackendID    string `json:"backend_id,omitempty"`
	Address      string `json:"address,omitempty"`
	MetricDetail any    `json:"metric_detail,omitempty"`
}

// eventJSON is the --json line of an event: one compact object and a
// newline. Pure.
func eventJSON(at time.Time, source string, ev *command.Event) ([]byte, error) {
	rec := eventRecord{
		Time:      at.UTC().Format("2006-01-02T15:04:05.000Z"),
		Source:    eventSource(source),
		Kind:      ev.GetKind().String(),
		ClusterID: ev.GetClusterId(),
		BackendID: ev.GetBackendId(),
	}
	if ev.Address != nil {
		rec.Address = ev.GetAddress().Display()
	}
	if md := ev.GetMetricDetail(); md != nil {
		rec.MetricDetail = map[string]string{
			"previous_effective": md.GetPreviousEffective().String(),
			"effective":          md.GetEffective().String(),
			"transition_kind":    md.GetTransitionKind(),
			"client_id":          md.GetClientId(),
		}
	}
	return encodeJSONLine(rec)
}
