package top

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/sozu-go/sozu/proto/command"
	pm "github.com/sozu-go/sozu/proto/metrics"
)

// Styles. Colours are 24-bit; Bubble Tea degrades them to what the
// terminal supports (256, 16 colours, none with NO_COLOR). Every colour
// signal has a glyph beside it ("!" critical or expiring, ▲▼ sort and
// trend) so nothing depends on colour alone.
var (
	stTabOn  = lipgloss.NewStyle().Reverse(true).Bold(true)
	stTabOff = lipgloss.NewStyle().Faint(true)
	stHead   = lipgloss.NewStyle().Bold(true)
	stHot    = lipgloss.NewStyle().Foreground(lipgloss.Color("#e8545a")).Bold(true)
	stWarm   = lipgloss.NewStyle().Foreground(lipgloss.Color("#f5bf4f"))
	stCool   = lipgloss.NewStyle().Foreground(lipgloss.Color("#39ad98"))
	stAccent = lipgloss.NewStyle().Foreground(lipgloss.Color("#56c0f0"))
	stMuted  = lipgloss.NewStyle().Faint(true)
)

// Frame renders the whole screen: exactly height lines, none wider than
// width cells, so that a redraw overwrites the last one in place.
func (m *Model) Frame() string {
	w, h := max(m.width, 20), max(m.height, 3)
	body := m.body(w, h-2)
	lines := make([]string, 0, h)
	lines = append(lines, fit(m.tabs(), w))
	for i := range h - 2 {
		l := ""
		if i < len(body) {
			l = body[i]
		}
		lines = append(lines, fit(l, w))
	}
	lines = append(lines, fit(m.footer(w), w))
	return strings.Join(lines, "\n")
}

// fit truncates s to w cells and pads it to exactly w.
func fit(s string, w int) string {
	s = ansi.Truncate(s, w, "…")
	if n := ansi.StringWidth(s); n < w {
		s += strings.Repeat(" ", w-n)
	}
	return s
}

func (m *Model) tabs() string {
	var b strings.Builder
	for p := range paneCount {
		label := fmt.Sprintf(" %d %s ", p+1, p)
		if p == m.pane {
			b.WriteString(stTabOn.Render(label))
		} else {
			b.WriteString(stTabOff.Render(label))
		}
	}
	return b.String()
}

func (m *Model) footer(w int) string {
	left := "1-7/Tab pane · s sort · S reverse · ? help · q quit"
	var right []string
	if st, keys := m.sortOf(); st != nil {
		k := keys[st.key]
		right = append(right, "sort: "+k.name+" "+arrow(k.desc != st.reverse))
	}
	switch {
	case m.streamErr != "":
		right = append(right, stHot.Render("events: down"))
	default:
		right = append(right, "events: live")
	}
	if !m.now.IsZero() {
		right = append(right, m.now.Local().Format("15:04:05"))
	}
	r := strings.Join(right, " · ")
	gap := w - ansi.StringWidth(left) - ansi.StringWidth(r)
	if gap < 1 {
		left = "? help · q quit"
		gap = w - ansi.StringWidth(left) - ansi.StringWidth(r)
	}
	if gap < 1 {
		return r
	}
	return stMuted.Render(left) + strings.Repeat(" ", gap) + r
}

func arrow(desc bool) string {
	if desc {
		return "▼"
	}
	return "▲"
}

// body renders the current pane (or the help) in h lines of w cells.
func (m *Model) body(w, h int) []string {
	if m.help {
		return helpLines()
	}
	switch m.pane {
	case Overview:
		return m.overview(w, h)
	case Clusters:
		return m.clusterPane()
	case Backends:
		return m.backendPane()
	case Listeners:
		return m.listenerPane()
	case Certificates:
		return m.certPane()
	case HTTP2:
		return m.h2Pane()
	default:
		return m.eventPane(h)
	}
}

func helpLines() []string {
	return []string{
		stHead.Render("sozu top: a live, read-only view of the proxy over its command socket"),
		"",
		"  1-7        show a pane: overview, clusters, backends, listeners,",
		"             certificates, HTTP/2, events",
		"  Tab        next pane (Shift-Tab: previous)",
		"  s          sort the clusters or backends by the next column",
		"  S          reverse the sort",
		"  ?          this help (Esc closes it)",
		"  q, Ctrl-C  quit (SIGTERM too); the terminal is restored",
		"",
		"Metrics (query_metrics) refresh every second; listeners, certificates",
		"and clusters every 5 s and after each change; events as they happen.",
		"Latencies in ms. Marks: ! critical (p99 ≥ 500 ms, 5xx ≥ 1 %, no backend up, backend down,",
		"certificate expiring within 30 days); ▲ ▼ trend and sort direction.",
	}
}

// title is a pane's first line: its name and, when its last query
// failed, why.
func title(name, err string) string {
	if err == "" {
		return stHead.Render(name)
	}
	return stHead.Render(name) + "  " + stWarm.Render("("+clean(err)+")")
}

func (m *Model) metricsNote() string {
	if m.metricsErr != "" {
		return stWarm.Render("metrics unavailable: " + clean(m.metricsErr))
	}
	if m.cur == nil {
		return stMuted.Render("metrics: waiting for the first answer")
	}
	return ""
}

func (m *Model) overview(w, h int) []string {
	lines := []string{title("OVERVIEW", ""), ""}
	if note := m.metricsNote(); note != "" && m.cur == nil {
		lines = append(lines, note, "")
	} else {
		if note != "" {
			lines = append(lines, note)
		}
		sparkW := max(w-34, 8)
		for _, s := range []struct {
			name string
			r    *ring
			unit string
			crit func(float64) bool
		}{
			{"REQUESTS/S", &m.rps, "", nil},
			{"p99 LATENCY", &m.p99, "ms", func(v float64) bool { return v*1000 >= p99CriticalUs }},
			{"5xx ERRORS", &m.errPct, "%", func(v float64) bool { return v >= errCriticalPct }},
			{"CONNECTIONS", &m.conns, "", nil},
		} {
			val, ok := s.r.last()
			num := "-"
			switch {
			case ok && s.unit == "ms":
				num = millis(uint64(val*1000)) + "ms"
			case ok:
				num = number(val) + s.unit
			}
			mark, st := " ", stCool
			if ok && s.crit != nil && s.crit(val) {
				mark, st = "!", stHot
			}
			lines = append(lines, fmt.Sprintf("%s %-12s %10s %s  %s", mark, s.name, num, s.r.trend(), st.Render(spark(s.r.v, sparkW))))
		}
		lines = append(lines, "")
	}
	crows := m.ClusterRows()
	backends, down := 0, 0
	for _, r := range crows {
		backends += r.Total
		if r.KnownAvail {
			down += r.Total - r.Available
		}
	}
	certs := certRows(m.certs, m.now)
	expiring := 0
	for _, c := range certs {
		if c.Warn {
			expiring++
		}
	}
	nl := 0
	if l := m.listeners; l != nil {
		nl = len(l.GetHttpListeners()) + len(l.GetHttpsListeners()) + len(l.GetTcpListeners()) + len(l.GetUdpListeners())
	}
	summary := fmt.Sprintf("clusters %d · backends %d", len(crows), backends)
	if down > 0 {
		summary += " (" + stHot.Render(fmt.Sprintf("%d down", down)) + ")"
	}
	summary += fmt.Sprintf(" · listeners %d · certificates %d", nl, len(certs))
	if expiring > 0 {
		summary += " (" + stWarm.Render(fmt.Sprintf("! %d expire < 30 d", expiring)) + ")"
	}
	lines = append(lines, summary, "", stHead.Render("recent events"))
	room := h - len(lines)
	return append(lines, m.eventLines(room)...)
}

// spark draws the last w values of v as block characters scaled to the
// largest of them.
func spark(v []float64, w int) string {
	const blocks = "▁▂▃▄▅▆▇█"
	if len(v) > w {
		v = v[len(v)-w:]
	}
	top := 0.0
	for _, x := range v {
		top = max(top, x)
	}
	var b strings.Builder
	rs := []rune(blocks)
	for _, x := range v {
		i := 0
		if top > 0 {
			i = int(math.Round(x / top * float64(len(rs)-1)))
		}
		b.WriteRune(rs[i])
	}
	return b.String()
}

// number prints a value compactly: 12, 3.45, 12.3k, 4.5M.
func number(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case a >= 100 || v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// millis prints a duration in µs as milliseconds with three significant
// digits: 0.16, 12.8, 1425.
func millis(us uint64) string {
	ms := float64(us) / 1000
	switch {
	case ms < 10:
		return fmt.Sprintf("%.2f", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f", ms)
	}
	return fmt.Sprintf("%.0f", ms)
}

func bytesRate(v float64) string {
	switch {
	case v >= 1<<20:
		return fmt.Sprintf("%.1fM", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1fk", v/(1<<10))
	}
	return fmt.Sprintf("%.0f", v)
}

// header renders column titles, marking the sort column.
func header(format string, cols []string, sortCol string, desc bool) string {
	args := make([]any, len(cols))
	for i, c := range cols {
		if f := strings.Fields(c); len(f) > 0 && strings.EqualFold(f[0], sortCol) {
			c += arrow(desc)
		}
		args[i] = c
	}
	return stHead.Render(fmt.Sprintf(format, args...))
}

func (m *Model) clusterPane() []string {
	rows := m.ClusterRows()
	k := clusterSorts[m.clusterSort.key]
	lines := []string{title(fmt.Sprintf("CLUSTERS · %d", len(rows)), m.clustersErr)}
	if note := m.metricsNote(); note != "" {
		lines = append(lines, note)
	}
	const f = "  %-22s %9s %7s %7s %7s %9s %9s"
	lines = append(lines, header(f, []string{"cluster", "rps", "err%", "p50 ms", "p99 ms", "backends", "frontends"}, k.name, k.desc != m.clusterSort.reverse))
	for _, r := range rows {
		rps, errp, p50, p99 := "-", "-", "-", "-"
		if r.KnownRate {
			rps, errp = number(r.RPS), fmt.Sprintf("%.2f", r.ErrPct)
		}
		if r.KnownLatency {
			p50, p99 = millis(r.P50), millis(r.P99)
		}
		avail := "-"
		if r.KnownAvail {
			avail = fmt.Sprintf("%d/%d", r.Available, r.Total)
		} else if r.Total > 0 {
			avail = fmt.Sprintf("?/%d", r.Total)
		}
		line := fmt.Sprintf(f, trunc(clean(r.ID), 22), rps, errp, p50, p99, avail, fmt.Sprint(r.Frontends))
		if r.Critical {
			line = stHot.Render("!" + line[1:])
		}
		lines = append(lines, line)
	}
	if len(rows) == 0 {
		lines = append(lines, stMuted.Render("  no clusters"))
	}
	return lines
}

func (m *Model) backendPane() []string {
	rows := m.BackendRows()
	k := backendSorts[m.backendSort.key]
	lines := []string{title(fmt.Sprintf("BACKENDS · %d", len(rows)), m.clustersErr)}
	if note := m.metricsNote(); note != "" {
		lines = append(lines, note)
	}
	const f = "  %-12s %-12s %-21s %-5s %7s %7s %6s %7s %6s %6s"
	lines = append(lines, header(f, []string{"cluster", "backend", "address", "state", "in/s", "out/s", "conns", "rps", "p50 ms", "p99 ms"}, cmp.Or(map[string]string{"bandwidth": "in/s"}[k.name], k.name), k.desc != m.backendSort.reverse))
	for _, r := range rows {
		in, out, rps, conns, p50, p99 := "-", "-", "-", "-", "-", "-"
		if r.KnownRate {
			in, out, rps = bytesRate(r.InBps), bytesRate(r.OutBps), number(r.RPS)
		}
		if r.KnownConns {
			conns = number(r.Conns)
		}
		if r.KnownLatency {
			p50, p99 = millis(r.P50), millis(r.P99)
		}
		line := fmt.Sprintf(f, trunc(clean(r.Cluster), 12), trunc(clean(r.ID), 12), r.Address, r.State, in, out, conns, rps, p50, p99)
		if r.State == "down" {
			line = stHot.Render("!" + line[1:])
		}
		lines = append(lines, line)
	}
	if len(rows) == 0 {
		lines = append(lines, stMuted.Render("  no backends"))
	}
	return lines
}

func (m *Model) listenerPane() []string {
	l := m.listeners
	n := len(l.GetHttpListeners()) + len(l.GetHttpsListeners()) + len(l.GetTcpListeners()) + len(l.GetUdpListeners())
	lines := []string{title(fmt.Sprintf("LISTENERS · %d", n), m.listenersErr)}
	const f = "  %-5s %-22s %-22s %-6s %6s %6s %8s  %s"
	lines = append(lines, stHead.Render(fmt.Sprintf(f, "proto", "address", "public", "active", "front", "back", "connect", "details")))
	row := func(proto, addr string, pub *command.SocketAddress, active bool, front, back uint32, connect, details string) {
		p := "-"
		if pub != nil {
			p = pub.Display()
		}
		a := stCool.Render(fmt.Sprintf("%-6s", "yes"))
		if !active {
			a = stWarm.Render(fmt.Sprintf("%-6s", "no"))
		}
		lines = append(lines, fmt.Sprintf("  %-5s %-22s %-22s %s %5ds %5ds %8s  %s", proto, addr, p, a, front, back, connect, details))
	}
	secs := func(v uint32) string { return fmt.Sprintf("%ds", v) }
	for _, k := range slices.Sorted(maps.Keys(l.GetHttpListeners())) {
		x := l.GetHttpListeners()[k]
		row("http", x.GetAddress().Display(), x.PublicAddress, x.GetActive(), x.GetFrontTimeout(), x.GetBackTimeout(), secs(x.GetConnectTimeout()), "sticky "+clean(x.GetStickyName()))
	}
	for _, k := range slices.Sorted(maps.Keys(l.GetHttpsListeners())) {
		x := l.GetHttpsListeners()[k]
		var vs []string
		for _, v := range x.GetVersions() {
			vs = append(vs, strings.NewReplacer("TLS_V1_", "TLSv1.").Replace(v.String()))
		}
		row("https", x.GetAddress().Display(), x.PublicAddress, x.GetActive(), x.GetFrontTimeout(), x.GetBackTimeout(), secs(x.GetConnectTimeout()), strings.Join(vs, ","))
	}
	for _, k := range slices.Sorted(maps.Keys(l.GetTcpListeners())) {
		x := l.GetTcpListeners()[k]
		row("tcp", x.GetAddress().Display(), x.PublicAddress, x.GetActive(), x.GetFrontTimeout(), x.GetBackTimeout(), secs(x.GetConnectTimeout()), "")
	}
	for _, k := range slices.Sorted(maps.Keys(l.GetUdpListeners())) {
		x := l.GetUdpListeners()[k]
		row("udp", x.GetAddress().Display(), x.PublicAddress, x.GetActive(), x.GetFrontTimeout(), x.GetBackTimeout(), "-",
			fmt.Sprintf("max flows %d, datagrams ≤ %d B", x.GetMaxFlows(), x.GetMaxRxDatagramSize()))
	}
	if n == 0 {
		lines = append(lines, stMuted.Render("  no listeners"))
	}
	return lines
}

func (m *Model) certPane() []string {
	rows := certRows(m.certs, m.now)
	lines := []string{title(fmt.Sprintf("CERTIFICATES · %d · ! expires within 30 days", len(rows)), m.certsErr)}
	const f = "  %-10s %8s  %-16s  %s"
	lines = append(lines, stHead.Render(fmt.Sprintf(f, "expires", "left", "fingerprint", "names")))
	for _, r := range rows {
		exp, left := "?", "?"
		if r.Known {
			exp = r.NotAfter.UTC().Format("2006-01-02")
			left = fmt.Sprintf("%dd", int(math.Floor(r.Left.Hours()/24)))
			if r.Left < 0 {
				left = "expired"
			}
		}
		line := fmt.Sprintf(f, exp, left, trunc(clean(r.Fingerprint), 16), clean(r.Names))
		switch {
		case r.Crit:
			line = stHot.Render("!" + line[1:])
		case r.Warn:
			line = stWarm.Render("!" + line[1:])
		}
		lines = append(lines, line)
	}
	if len(rows) == 0 {
		lines = append(lines, stMuted.Render("  no certificates"))
	}
	return lines
}

func (m *Model) h2Pane() []string {
	lines := []string{title("HTTP/2", "")}
	if note := m.metricsNote(); note != "" {
		lines = append(lines, note)
	}
	if m.cur == nil {
		return lines
	}
	const f = "  %-36s %12s %10s"
	lines = append(lines, stHead.Render(fmt.Sprintf(f, "counter", "total", "per s")))
	var prev map[string]*command.FilteredMetrics
	dt := 0.0
	if m.prev != nil {
		prev, dt = m.prev.M.GetProxying(), m.cur.At.Sub(m.prev.At).Seconds()
	}
	type row struct{ name, label string }
	rows := []row{
		{mH2Connections, "connections (ALPN h2)"},
		{mH2Streams, "streams"},
		{mH2Active, "streams active now (gauge)"},
		{mH2Resets, "RST_STREAM sent"},
		{mH2Reaped, "streams reaped (idle, stalled)"},
		{mH2Flood, "flood-budget violations (GOAWAY)"},
	}
	for _, c := range pm.H2FloodClasses {
		rows = append(rows, row{pm.H2Flood(c), "  of which " + c})
	}
	for _, c := range rows {
		total, ok := counter(m.cur.M.GetProxying(), c.name)
		t, r := "-", "-"
		if ok {
			t = number(total)
		}
		if v, ok := rate(prev, m.cur.M.GetProxying(), c.name, dt); ok && c.name != mH2Active {
			r = number(v)
		}
		line := fmt.Sprintf(f, c.label, t, r)
		if (c.name == mH2Flood || strings.HasPrefix(c.name, pm.H2Flood(""))) && total > 0 {
			line = stHot.Render("!" + line[1:])
		}
		lines = append(lines, line)
	}
	return lines
}

func (m *Model) eventPane(h int) []string {
	lines := []string{title(fmt.Sprintf("EVENTS · %d", len(m.events)), m.streamErr)}
	return append(lines, m.eventLines(h-1)...)
}

// eventLines renders the last n events, oldest first.
func (m *Model) eventLines(n int) []string {
	if n <= 0 {
		return nil
	}
	evs := m.events
	if len(evs) == 0 {
		return []string{stMuted.Render("  no events yet")}
	}
	if len(evs) > n {
		evs = evs[len(evs)-n:]
	}
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		src := "main"
		if e.Source != "" && e.Source != "main" {
			src = "worker " + clean(e.Source)
		}
		line := fmt.Sprintf("  %s %-8s %s%s", e.At.Local().Format("15:04:05"), src, e.Ev.GetKind(), eventIDs(e.Ev))
		switch e.Ev.GetKind() {
		case command.EventKind_BACKEND_DOWN, command.EventKind_NO_AVAILABLE_BACKENDS, command.EventKind_WORKER_KILLED, command.EventKind_HEALTH_CHECK_UNHEALTHY:
			line = stHot.Render(line)
		case command.EventKind_BACKEND_UP, command.EventKind_CLUSTER_RECOVERED, command.EventKind_HEALTH_CHECK_HEALTHY:
			line = stCool.Render(line)
		case command.EventKind_METRIC_DETAIL_CHANGED:
			line = stAccent.Render(line)
		}
		out = append(out, line)
	}
	return out
}

func eventIDs(ev *command.Event) string {
	var b strings.Builder
	if ev.ClusterId != nil {
		b.WriteString(" cluster=" + clean(ev.GetClusterId()))
	}
	if ev.BackendId != nil {
		b.WriteString(" backend=" + clean(ev.GetBackendId()))
	}
	if ev.Address != nil {
		b.WriteString(" address=" + ev.GetAddress().Display())
	}
	return b.String()
}

// clean replaces control characters (C0, DEL, C1) of text from the proxy
// with "?", so that no identifier can drive the terminal.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return '?'
		}
		return r
	}, s)
}

// trunc cuts s to n cells with an ellipsis.
func trunc(s string, n int) string { return ansi.Truncate(s, n, "…") }

// Now reports the model's clock: the time of the latest message.
func (m *Model) Now() time.Time { return m.now }
