package main

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/sozu-go/sozu/proto/command"
	"google.golang.org/protobuf/proto"
)

// renderText renders a terminal response for people. stdout is the answer:
// the content, or the message when there is none; stderr is the message of
// a FAILURE. With color, a few words get ANSI colours (the caller passes
// color only when the stream is a terminal). Every string that came from
// the supervisor is cleaned of control characters, so a hostile hostname
// cannot drive the operator's terminal, and private keys are redacted.
// renderText is pure: same response, same text.
func renderText(r *command.Response, color bool) (stdout, stderr string) {
	r = redactResponse(r)
	p := painter(color)
	if r.GetStatus() == command.ResponseStatus_FAILURE {
		return "", p.red("error:") + " " + cleanText(r.GetMessage(), true) + "\n"
	}
	if r.GetContent() == nil {
		return cleanText(r.GetMessage(), true) + "\n", ""
	}
	var b strings.Builder
	renderContent(&b, r.GetContent(), p)
	// Lines after the message's first (status: the last reload and
	// upgrade) follow the content.
	if _, rest, ok := strings.Cut(r.GetMessage(), "\n"); ok {
		b.WriteString(cleanText(rest, true) + "\n")
	}
	return b.String(), ""
}

// renderProgress renders a PROCESSING response for stderr.
func renderProgress(r *command.Response) string {
	return cleanText(r.GetMessage(), true) + "\n"
}

func renderContent(b *strings.Builder, c *command.ResponseContent, p painter) {
	switch ct := c.GetContentType().(type) {
	case *command.ResponseContent_Workers:
		renderWorkers(b, ct.Workers, p)
	case *command.ResponseContent_WorkerResponses:
		renderWorkerResponses(b, ct.WorkerResponses, p)
	case *command.ResponseContent_FrontendList:
		renderFrontendList(b, ct.FrontendList)
	case *command.ResponseContent_ListenersList:
		renderListeners(b, ct.ListenersList)
	case *command.ResponseContent_Clusters:
		renderClusters(b, ct.Clusters)
	case *command.ResponseContent_ClusterHashes:
		renderHashes(b, []string{"hash"}, []*command.ClusterHashes{ct.ClusterHashes}, p)
	case *command.ResponseContent_CertificatesWithFingerprints:
		renderCertificates(b, ct.CertificatesWithFingerprints)
	case *command.ResponseContent_CertificatesByAddress:
		renderCertificatesByAddress(b, ct.CertificatesByAddress)
	case *command.ResponseContent_MaxConnectionsPerIpLimit:
		if n := ct.MaxConnectionsPerIpLimit.GetLimit(); n == 0 {
			b.WriteString("max connections per IP: unlimited (clusters may set their own)\n")
		} else {
			fmt.Fprintf(b, "max connections per IP: %d per cluster and client IP, in each worker (clusters may set their own)\n", n)
		}
	case *command.ResponseContent_HealthChecksList:
		renderHealthChecks(b, ct.HealthChecksList)
	case *command.ResponseContent_RequestCounts:
		renderRequestCounts(b, ct.RequestCounts)
	case *command.ResponseContent_Metrics:
		renderMetrics(b, ct.Metrics)
	case *command.ResponseContent_AvailableMetrics:
		renderAvailableMetrics(b, ct.AvailableMetrics)
	default:
		// Content this CLI has no table for: its JSON form, indented.
		j, err := contentJSON(c)
		if err != nil {
			fmt.Fprintf(b, "(content not renderable: %v)\n", err)
			return
		}
		b.WriteString(cleanText(string(j), true))
		b.WriteString("\n")
	}
}

func renderWorkers(b *strings.Builder, w *command.WorkerInfos, p painter) {
	list := slices.Clone(w.GetVec())
	if len(list) == 0 {
		b.WriteString("no workers\n")
		return
	}
	slices.SortStableFunc(list, func(x, y *command.WorkerInfo) int { return cmp.Compare(x.GetId(), y.GetId()) })
	tw := newTable(b)
	fmt.Fprintln(tw, "WORKER\tPID\tSTATE")
	counts := map[command.RunState]int{}
	for _, wi := range list {
		counts[wi.GetRunState()]++
		fmt.Fprintf(tw, "%d\t%d\t%s\n", wi.GetId(), wi.GetPid(), p.runState(wi.GetRunState()))
	}
	tw.Flush()
	var parts []string
	for _, st := range []command.RunState{command.RunState_RUNNING, command.RunState_STOPPING, command.RunState_STOPPED, command.RunState_NOT_ANSWERING} {
		if n := counts[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, strings.ToLower(strings.ReplaceAll(st.String(), "_", " "))))
		}
	}
	fmt.Fprintf(b, "%d %s: %s\n", len(list), plural(len(list), "worker"), strings.Join(parts, ", "))
}

// workerOrder sorts the keys of worker_responses: "main" first, then worker
// ids in numeric order, then anything else.
func workerOrder(keys []string) []string {
	rank := func(k string) (int, uint64) {
		if k == "main" {
			return 0, 0
		}
		if n, err := strconv.ParseUint(k, 10, 64); err == nil {
			return 1, n
		}
		return 2, 0
	}
	out := slices.Clone(keys)
	slices.SortFunc(out, func(a, b string) int {
		ra, na := rank(a)
		rb, nb := rank(b)
		return cmp.Or(cmp.Compare(ra, rb), cmp.Compare(na, nb), strings.Compare(a, b))
	})
	return out
}

func workerLabel(k string) string {
	if _, err := strconv.ParseUint(k, 10, 64); err == nil {
		return "worker " + k
	}
	return cleanText(k, false)
}

func renderWorkerResponses(b *strings.Builder, wr *command.WorkerResponses, p painter) {
	m := wr.GetMap()
	keys := workerOrder(slices.Collect(maps.Keys(m)))
	if len(keys) == 0 {
		b.WriteString("no answers\n")
		return
	}
	allHashes := true
	for _, k := range keys {
		if _, ok := m[k].GetContentType().(*command.ResponseContent_ClusterHashes); !ok && m[k].GetContentType() != nil {
			allHashes = false
		}
	}
	if allHashes {
		hs := make([]*command.ClusterHashes, len(keys))
		for i, k := range keys {
			hs[i] = m[k].GetClusterHashes()
		}
		renderHashes(b, keys, hs, p)
		return
	}
	// Group processes whose answers are identical, so the usual case (every
	// worker agrees with main) prints once.
	type answer struct {
		who     []string
		content *command.ResponseContent
	}
	var answers []*answer
next:
	for _, k := range keys {
		for _, a := range answers {
			if proto.Equal(a.content, m[k]) {
				a.who = append(a.who, k)
				continue next
			}
		}
		answers = append(answers, &answer{who: []string{k}, content: m[k]})
	}
	for i, a := range answers {
		if i > 0 {
			b.WriteString("\n")
		}
		labels := make([]string, len(a.who))
		for j, k := range a.who {
			labels[j] = workerLabel(k)
		}
		fmt.Fprintf(b, "== %s ==\n", strings.Join(labels, ", "))
		if a.content.GetContentType() == nil {
			b.WriteString("(no content)\n")
			continue
		}
		renderContent(b, a.content, p)
	}
	if len(answers) > 1 {
		fmt.Fprintf(b, "\n%s: the processes gave %d different answers\n", p.red("warning"), len(answers))
	}
}

// renderHashes prints one column per process and says whether they agree.
func renderHashes(b *strings.Builder, who []string, hs []*command.ClusterHashes, p painter) {
	ids := map[string]bool{}
	for _, h := range hs {
		for id := range h.GetMap() {
			ids[id] = true
		}
	}
	clusters := slices.Sorted(maps.Keys(ids))
	var differ []string
	if len(clusters) == 0 {
		b.WriteString("no clusters\n")
	} else {
		tw := newTable(b)
		head := []string{"CLUSTER"}
		for _, w := range who {
			head = append(head, strings.ToUpper(cleanText(w, false)))
		}
		fmt.Fprintln(tw, strings.Join(head, "\t"))
		for _, id := range clusters {
			row := []string{cleanText(id, false)}
			same := true
			first, firstOK := hs[0].GetMap()[id]
			for _, h := range hs {
				v, ok := h.GetMap()[id]
				if ok {
					row = append(row, fmt.Sprintf("%016x", v))
				} else {
					row = append(row, "-")
				}
				if ok != firstOK || v != first {
					same = false
				}
			}
			if !same {
				differ = append(differ, cleanText(id, false))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		tw.Flush()
	}
	if len(who) < 2 {
		return
	}
	if len(differ) == 0 {
		fmt.Fprintf(b, "all %d processes agree\n", len(who))
		return
	}
	fmt.Fprintf(b, "%s: processes disagree on %d %s: %s\n", p.red("warning"), len(differ), plural(len(differ), "cluster"), strings.Join(differ, ", "))
}

func renderClusters(b *strings.Builder, cs *command.ClusterInformations) {
	if len(cs.GetVec()) == 0 {
		b.WriteString("no clusters\n")
		return
	}
	for i, ci := range cs.GetVec() {
		if i > 0 {
			b.WriteString("\n")
		}
		c := ci.GetConfiguration()
		if c == nil {
			b.WriteString("cluster (no configuration)\n")
		} else {
			fmt.Fprintf(b, "cluster %s\n", cleanText(c.GetClusterId(), false))
			tw := newTable(b)
			lb := strings.ToLower(c.GetLoadBalancing().String())
			if c.LoadMetric != nil {
				lb += " (metric " + strings.ToLower(c.GetLoadMetric().String()) + ")"
			}
			fmt.Fprintf(tw, "  load balancing\t%s\n", lb)
			fmt.Fprintf(tw, "  sticky session\t%s\n", yesNo(c.GetStickySession()))
			redirect := yesNo(c.GetHttpsRedirect())
			if c.HttpsRedirectPort != nil {
				redirect += fmt.Sprintf(" (port %d)", c.GetHttpsRedirectPort())
			}
			fmt.Fprintf(tw, "  https redirect\t%s\n", redirect)
			if c.ProxyProtocol != nil {
				fmt.Fprintf(tw, "  proxy protocol\t%s\n", strings.ToLower(c.GetProxyProtocol().String()))
			}
			if c.Http2 != nil {
				fmt.Fprintf(tw, "  http2 backends\t%s\n", yesNo(c.GetHttp2()))
			}
			if c.MaxConnectionsPerIp != nil {
				fmt.Fprintf(tw, "  max conns per ip\t%d\n", c.GetMaxConnectionsPerIp())
			}
			if c.HealthCheck != nil {
				hc := c.GetHealthCheck()
				fmt.Fprintf(tw, "  health check\t%s every %ds\n", cleanText(hc.GetUri(), false), hc.GetInterval())
			}
			if n := len(c.GetAuthorizedHashes()); n > 0 {
				fmt.Fprintf(tw, "  basic auth\t%d %s\n", n, plural(n, "credential"))
			}
			tw.Flush()
		}
		for _, sec := range []struct {
			title string
			list  []*command.RequestHttpFrontend
		}{{"HTTP frontends", ci.GetHttpFrontends()}, {"HTTPS frontends", ci.GetHttpsFrontends()}} {
			if len(sec.list) > 0 {
				fmt.Fprintf(b, "  %s\n", sec.title)
				httpFrontendTable(b, "    ", sec.list, false)
			}
		}
		if len(ci.GetTcpFrontends()) > 0 {
			b.WriteString("  TCP frontends\n")
			tcpFrontendTable(b, "    ", ci.GetTcpFrontends(), false)
		}
		if len(ci.GetUdpFrontends()) > 0 {
			b.WriteString("  UDP frontends\n")
			udpFrontendTable(b, "    ", ci.GetUdpFrontends(), false)
		}
		if len(ci.GetBackends()) == 0 {
			b.WriteString("  backends: none\n")
			continue
		}
		b.WriteString("  backends\n")
		tw := newTable(b)
		fmt.Fprintln(tw, "    ID\tADDRESS\tWEIGHT\tBACKUP\tSTICKY-ID")
		for _, be := range ci.GetBackends() {
			weight := "-"
			if be.LoadBalancingParameters != nil {
				weight = strconv.Itoa(int(be.GetLoadBalancingParameters().GetWeight()))
			}
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\n", cleanText(be.GetBackendId(), false), be.GetAddress().Display(),
				weight, yesNo(be.GetBackup()), orDash(be.StickyId))
		}
		tw.Flush()
	}
}

func renderFrontendList(b *strings.Builder, f *command.ListedFrontends) {
	n := len(f.GetHttpFrontends()) + len(f.GetHttpsFrontends()) + len(f.GetTcpFrontends()) + len(f.GetUdpFrontends())
	if n == 0 {
		b.WriteString("no frontends\n")
		return
	}
	sep := ""
	section := func(title string) {
		b.WriteString(sep + title + "\n")
		sep = "\n"
	}
	if len(f.GetHttpFrontends()) > 0 {
		section("HTTP frontends")
		httpFrontendTable(b, "", f.GetHttpFrontends(), true)
	}
	if len(f.GetHttpsFrontends()) > 0 {
		section("HTTPS frontends")
		httpFrontendTable(b, "", f.GetHttpsFrontends(), true)
	}
	if len(f.GetTcpFrontends()) > 0 {
		section("TCP frontends")
		tcpFrontendTable(b, "", f.GetTcpFrontends(), true)
	}
	if len(f.GetUdpFrontends()) > 0 {
		section("UDP frontends")
		udpFrontendTable(b, "", f.GetUdpFrontends(), true)
	}
}

// pathText shows a path rule in nginx style: prefix as is ("*" when empty,
// i.e. any path), "=" for equals, "~" for a regex.
func pathText(r *command.PathRule) string {
	v := cleanText(r.GetValue(), false)
	switch r.GetKind() {
	case command.PathRuleKind_EQUALS:
		return "=" + v
	case command.PathRuleKind_REGEX:
		return "~" + v
	default:
		if v == "" {
			return "*"
		}
		return v
	}
}

func httpFrontendTable(b *strings.Builder, indent string, list []*command.RequestHttpFrontend, withCluster bool) {
	tw := newTable(b)
	head := "ADDRESS\tHOSTNAME\tPATH\tMETHOD\tTAGS"
	if withCluster {
		head = "ADDRESS\tHOSTNAME\tPATH\tMETHOD\tCLUSTER\tTAGS"
	}
	fmt.Fprintln(tw, indent+head)
	for _, f := range list {
		cols := []string{f.GetAddress().Display(), cleanText(f.GetHostname(), false), pathText(f.GetPath()), orDash(f.Method)}
		if withCluster {
			cluster := "(deny)"
			if f.ClusterId != nil {
				cluster = cleanText(f.GetClusterId(), false)
			}
			cols = append(cols, cluster)
		}
		cols = append(cols, tagsText(f.GetTags()))
		fmt.Fprintln(tw, indent+strings.Join(cols, "\t"))
	}
	tw.Flush()
}

func tcpFrontendTable(b *strings.Builder, indent string, list []*command.RequestTcpFrontend, withCluster bool) {
	tw := newTable(b)
	if withCluster {
		fmt.Fprintln(tw, indent+"ADDRESS\tCLUSTER\tTAGS")
	} else {
		fmt.Fprintln(tw, indent+"ADDRESS\tTAGS")
	}
	for _, f := range list {
		if withCluster {
			fmt.Fprintf(tw, "%s%s\t%s\t%s\n", indent, f.GetAddress().Display(), cleanText(f.GetClusterId(), false), tagsText(f.GetTags()))
		} else {
			fmt.Fprintf(tw, "%s%s\t%s\n", indent, f.GetAddress().Display(), tagsText(f.GetTags()))
		}
	}
	tw.Flush()
}

func udpFrontendTable(b *strings.Builder, indent string, list []*command.RequestUdpFrontend, withCluster bool) {
	tcp := make([]*command.RequestTcpFrontend, len(list))
	for i, f := range list {
		tcp[i] = &command.RequestTcpFrontend{ClusterId: f.ClusterId, Address: f.Address, Tags: f.Tags}
	}
	tcpFrontendTable(b, indent, tcp, withCluster)
}

func renderListeners(b *strings.Builder, l *command.ListenersList) {
	n := len(l.GetHttpListeners()) + len(l.GetHttpsListeners()) + len(l.GetTcpListeners()) + len(l.GetUdpListeners())
	if n == 0 {
		b.WriteString("no listeners\n")
		return
	}
	sep := ""
	section := func(title string) *tabwriter.Writer {
		b.WriteString(sep + title + "\n")
		sep = "\n"
		return newTable(b)
	}
	if m := l.GetHttpListeners(); len(m) > 0 {
		tw := section("HTTP listeners")
		fmt.Fprintln(tw, "ADDRESS\tPUBLIC\tACTIVE\tPROXY\tFRONT\tBACK\tCONNECT\tREQUEST\tSTICKY")
		for _, k := range slices.Sorted(maps.Keys(m)) {
			c := m[k]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%ds\t%ds\t%ds\t%ds\t%s\n", c.GetAddress().Display(), addrOrDash(c.GetPublicAddress()),
				yesNo(c.GetActive()), yesNo(c.GetExpectProxy()), c.GetFrontTimeout(), c.GetBackTimeout(),
				c.GetConnectTimeout(), c.GetRequestTimeout(), cleanText(c.GetStickyName(), false))
		}
		tw.Flush()
	}
	if m := l.GetHttpsListeners(); len(m) > 0 {
		tw := section("HTTPS listeners")
		fmt.Fprintln(tw, "ADDRESS\tPUBLIC\tACTIVE\tPROXY\tFRONT\tBACK\tCONNECT\tREQUEST\tSTICKY\tTLS")
		for _, k := range slices.Sorted(maps.Keys(m)) {
			c := m[k]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%ds\t%ds\t%ds\t%ds\t%s\t%s\n", c.GetAddress().Display(), addrOrDash(c.GetPublicAddress()),
				yesNo(c.GetActive()), yesNo(c.GetExpectProxy()), c.GetFrontTimeout(), c.GetBackTimeout(),
				c.GetConnectTimeout(), c.GetRequestTimeout(), cleanText(c.GetStickyName(), false), tlsText(c.GetVersions()))
		}
		tw.Flush()
	}
	if m := l.GetTcpListeners(); len(m) > 0 {
		tw := section("TCP listeners")
		fmt.Fprintln(tw, "ADDRESS\tPUBLIC\tACTIVE\tPROXY\tFRONT\tBACK\tCONNECT")
		for _, k := range slices.Sorted(maps.Keys(m)) {
			c := m[k]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%ds\t%ds\t%ds\n", c.GetAddress().Display(), addrOrDash(c.GetPublicAddress()),
				yesNo(c.GetActive()), yesNo(c.GetExpectProxy()), c.GetFrontTimeout(), c.GetBackTimeout(), c.GetConnectTimeout())
		}
		tw.Flush()
	}
	if m := l.GetUdpListeners(); len(m) > 0 {
		tw := section("UDP listeners")
		fmt.Fprintln(tw, "ADDRESS\tPUBLIC\tACTIVE\tFRONT\tBACK\tMAX DATAGRAM\tMAX FLOWS")
		for _, k := range slices.Sorted(maps.Keys(m)) {
			c := m[k]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%ds\t%ds\t%d\t%d\n", c.GetAddress().Display(), addrOrDash(c.GetPublicAddress()),
				yesNo(c.GetActive()), c.GetFrontTimeout(), c.GetBackTimeout(), c.GetMaxRxDatagramSize(), c.GetMaxFlows())
		}
		tw.Flush()
	}
}

func tlsText(vs []command.TlsVersion) string {
	if len(vs) == 0 {
		return "default"
	}
	var out []string
	for _, v := range vs {
		switch v {
		case command.TlsVersion_TLS_V1_2:
			out = append(out, "1.2")
		case command.TlsVersion_TLS_V1_3:
			out = append(out, "1.3")
		default:
			out = append(out, strings.ToLower(v.String()))
		}
	}
	return strings.Join(out, ",")
}

func tagsText(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, cleanText(k, false)+"="+cleanText(m[k], false))
	}
	return strings.Join(parts, ",")
}

func newTable(b *strings.Builder) *tabwriter.Writer {
	return tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
}

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}

func orDash(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return cleanText(*s, false)
}

func addrOrDash(a *command.SocketAddress) string {
	if a == nil {
		return "-"
	}
	return a.Display()
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// cleanText makes supervisor-provided text safe for a terminal: control
// characters (C0, DEL, C1; in table cells tabs and newlines too), format
// characters (the bidirectional overrides and isolates such as U+202E,
// zero-width characters, BOM) and line separators are shown escaped as
// \u{202e}, and bytes that are not UTF-8 as \x{ff}. A hostile id can then
// neither drive the operator's terminal nor reorder what is printed
// around it, and what the operator sees tells which characters are there.
func cleanText(s string, allowNewline bool) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x{%02x}`, s[i])
		case r == '\n' && allowNewline:
			b.WriteByte('\n')
		case unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029':
			fmt.Fprintf(&b, `\u{%x}`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// painter adds ANSI colours when enabled.
type painter bool

func (p painter) wrap(code, s string) string {
	if !p {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (p painter) red(s string) string { return p.wrap("31", s) }

func (p painter) runState(s command.RunState) string {
	switch s {
	case command.RunState_RUNNING:
		return p.wrap("32", s.String())
	case command.RunState_NOT_ANSWERING:
		return p.wrap("31", s.String())
	default:
		return p.wrap("33", s.String())
	}
}
