package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sozu-go/sozu/proto/command"
)

// buildStateStats asks how many requests of each kind the state accepted
// since the supervisor started (count_requests, upstream's `state stats`).
func buildStateStats(*values) (*command.Request, error) {
	return &command.Request{RequestType: &command.Request_CountRequests{CountRequests: &command.CountRequests{}}}, nil
}

// renderRequestCounts prints one row per request kind, most frequent first
// (ties by name), and the total.
func renderRequestCounts(b *strings.Builder, rc *command.RequestCounts) {
	if len(rc.GetMap()) == 0 {
		b.WriteString("no request accepted by the state yet\n")
		return
	}
	type row struct {
		kind string
		n    int32
	}
	var rows []row
	var total int64
	for k, n := range rc.GetMap() {
		rows = append(rows, row{k, n})
		total += int64(n)
	}
	slices.SortFunc(rows, func(a, b row) int {
		if a.n != b.n {
			return int(b.n - a.n)
		}
		return strings.Compare(a.kind, b.kind)
	})
	tw := newTable(b)
	fmt.Fprintln(tw, "REQUEST\tCOUNT")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\n", cleanText(r.kind, false), r.n)
	}
	fmt.Fprintf(tw, "total\t%d\n", total)
	tw.Flush()
}
