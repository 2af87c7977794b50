// Package top is `sozu top`: a live terminal view of a running proxy,
// read-only, fed only by the command socket. The Model is pure (messages
// in, a frame out: model tests need no terminal); poll.go does the I/O in
// goroutines that send it messages, so the UI never waits on the socket.
package top

import (
	"cmp"
	"slices"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/sozu-go/sozu/proto/command"
)

// Pane is one screen of the view, selected by its number key.
type Pane int

const (
	Overview Pane = iota
	Clusters
	Backends
	Listeners
	Certificates
	HTTP2
	Events
	paneCount
)

var paneNames = [paneCount]string{"OVERVIEW", "CLUSTERS", "BACKENDS", "LISTENERS", "CERTS", "HTTP/2", "EVENTS"}

func (p Pane) String() string { return paneNames[p] }

// Messages the pollers send the model.
type (
	// MetricsMsg is a query_metrics answer (M) or why there is none (Err).
	MetricsMsg struct {
		At  time.Time
		M   *command.AggregatedMetrics
		Err string
	}
	// ListenersMsg is a list_listeners answer or its error.
	ListenersMsg struct {
		At  time.Time
		L   *command.ListenersList
		Err string
	}
	// CertsMsg is a query_certificates_from_the_state answer or its error.
	CertsMsg struct {
		At  time.Time
		C   *command.CertificatesWithFingerprints
		Err string
	}
	// ClustersMsg is the state's clusters (query_clusters_hashes, then
	// query_cluster_by_id for each) or the error.
	ClustersMsg struct {
		At       time.Time
		Clusters []*command.ClusterInformation
		Err      string
	}
	// EventMsg is an event of the subscribe_events stream.
	EventMsg struct {
		At     time.Time
		Source string // "main" or a worker id
		Ev     *command.Event
	}
	// StreamMsg says the event stream is up (Err "") or down (why).
	StreamMsg struct {
		At  time.Time
		Err string
	}
)

// sortKey is a column a table may be sorted by.
type sortKey struct {
	name string
	desc bool // natural direction: largest first
}

var (
	clusterSorts = []sortKey{{"err%", true}, {"rps", true}, {"p99", true}, {"backends", false}, {"cluster", false}}
	backendSorts = []sortKey{{"bandwidth", true}, {"rps", true}, {"p99", true}, {"conns", true}, {"backend", false}}
)

// sorting is the sort state of a table: which key, and whether reversed.
type sorting struct {
	key     int
	reverse bool
}

// EventEntry is an event kept for the events pane.
type EventEntry struct {
	At     time.Time
	Source string
	Ev     *command.Event
}

// Model is the state of `sozu top`. The zero value is not ready: use New.
type Model struct {
	width, height int
	pane          Pane
	help          bool
	clusterSort   sorting
	backendSort   sorting
	now           time.Time

	prev, cur  *Sample
	metricsErr string
	rps        ring // proxy requests/s
	p99        ring // proxy p99, ms
	errPct     ring // 5xx share of requests, %
	conns      ring // open client connections

	listeners    *command.ListenersList
	listenersErr string
	certs        *command.CertificatesWithFingerprints
	certsErr     string
	clusters     []*command.ClusterInformation
	clustersErr  string
	clustersSeen bool

	events    []EventEntry
	streamErr string
	down      map[backendKey]bool // backends reported down by events
}

// New returns a model for a terminal of 80×24 until told its size.
func New() *Model {
	return &Model{width: 80, height: 24, down: map[backendKey]bool{}}
}

// Init starts nothing: the pollers feed the model from outside.
func (m *Model) Init() tea.Cmd { return nil }

// Update folds a message into the model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tea.KeyPressMsg:
		return m, m.key(msg.String())
	case MetricsMsg:
		m.seen(msg.At)
		m.metrics(msg)
	case ListenersMsg:
		m.seen(msg.At)
		m.listeners, m.listenersErr = keep(m.listeners, msg.L, msg.Err), msg.Err
	case CertsMsg:
		m.seen(msg.At)
		m.certs, m.certsErr = keep(m.certs, msg.C, msg.Err), msg.Err
	case ClustersMsg:
		m.seen(msg.At)
		if msg.Err == "" {
			m.clusters, m.clustersSeen = msg.Clusters, true
		}
		m.clustersErr = msg.Err
	case EventMsg:
		m.seen(msg.At)
		m.event(msg)
	case StreamMsg:
		m.seen(msg.At)
		m.streamErr = msg.Err
	}
	return m, nil
}

// keep returns the new answer, or the old one when the query failed (the
// pane keeps showing the last known state, with the error in its title).
func keep[T any](old, new *T, err string) *T {
	if err != "" {
		return old
	}
	return new
}

func (m *Model) seen(at time.Time) {
	if at.After(m.now) {
		m.now = at
	}
}

func (m *Model) key(k string) tea.Cmd {
	switch k {
	case "q", "Q", "ctrl+c", "f10":
		return tea.Quit
	case "?", "f1":
		m.help = !m.help
	case "esc":
		m.help = false
	case "tab":
		m.pane = (m.pane + 1) % paneCount
	case "shift+tab":
		m.pane = (m.pane + paneCount - 1) % paneCount
	case "s":
		if st, keys := m.sortOf(); st != nil {
			st.key, st.reverse = (st.key+1)%len(keys), false
		}
	case "S":
		if st, _ := m.sortOf(); st != nil {
			st.reverse = !st.reverse
		}
	default:
		if len(k) == 1 && k[0] >= '1' && k[0] < '1'+byte(paneCount) {
			m.pane = Pane(k[0] - '1')
		}
	}
	return nil
}

// sortOf is the sort state and keys of the current pane, if it sorts.
func (m *Model) sortOf() (*sorting, []sortKey) {
	switch m.pane {
	case Clusters:
		return &m.clusterSort, clusterSorts
	case Backends:
		return &m.backendSort, backendSorts
	}
	return nil, nil
}

func (m *Model) metrics(msg MetricsMsg) {
	m.metricsErr = msg.Err
	if msg.M == nil {
		return
	}
	m.prev, m.cur = m.cur, &Sample{At: msg.At, M: msg.M}
	px := m.cur.M.GetProxying()
	if c, ok := counter(px, mClientConns); ok {
		m.conns.push(c)
	}
	if pc := percentiles(px, mRequestTime); pc != nil {
		m.p99.push(float64(pc.GetP_99()) / 1000)
	}
	if m.prev == nil {
		return
	}
	p := pair{m.prev.M.GetProxying(), px, m.cur.At.Sub(m.prev.At).Seconds()}
	if r, ok := p.rate(mHTTPRequests); ok {
		m.rps.push(r)
		e, _ := p.rate(mStatus5xx)
		share := 0.0
		if r > 0 {
			share = 100 * e / r
		}
		m.errPct.push(share)
	}
}

func (m *Model) event(msg EventMsg) {
	ev := msg.Ev
	k := backendKey{ev.GetClusterId(), ev.GetBackendId()}
	switch ev.GetKind() {
	case command.EventKind_BACKEND_DOWN, command.EventKind_HEALTH_CHECK_UNHEALTHY:
		m.down[k] = true
	case command.EventKind_BACKEND_UP, command.EventKind_HEALTH_CHECK_HEALTHY, command.EventKind_REMOVED_BACKEND_HAS_NO_CONNECTIONS:
		delete(m.down, k)
	}
	m.events = append(m.events, EventEntry(msg))
	if len(m.events) > eventsDepth {
		m.events = slices.Delete(m.events, 0, len(m.events)-eventsDepth)
	}
}

// ClusterRows returns the clusters pane's rows in the current order.
func (m *Model) ClusterRows() []ClusterRow {
	rows := clusterRows(m.clusters, m.prev, m.cur, m.down)
	st := m.clusterSort
	key := clusterSorts[st.key]
	slices.SortStableFunc(rows, func(a, b ClusterRow) int {
		var c int
		switch key.name {
		case "err%":
			c = cmp.Or(cmp.Compare(a.ErrPct, b.ErrPct), cmp.Compare(a.RPS, b.RPS))
		case "rps":
			c = cmp.Compare(a.RPS, b.RPS)
		case "p99":
			c = cmp.Compare(a.P99, b.P99)
		case "backends":
			c = cmp.Compare(a.Available, b.Available)
		}
		if key.desc {
			c = -c
		}
		if st.reverse {
			c = -c
		}
		return cmp.Or(c, strings.Compare(a.ID, b.ID))
	})
	return rows
}

// BackendRows returns the backends pane's rows in the current order.
func (m *Model) BackendRows() []BackendRow {
	rows := backendRows(m.clusters, m.prev, m.cur, m.down)
	st := m.backendSort
	key := backendSorts[st.key]
	slices.SortStableFunc(rows, func(a, b BackendRow) int {
		var c int
		switch key.name {
		case "bandwidth":
			c = cmp.Compare(a.InBps+a.OutBps, b.InBps+b.OutBps)
		case "rps":
			c = cmp.Compare(a.RPS, b.RPS)
		case "p99":
			c = cmp.Compare(a.P99, b.P99)
		case "conns":
			c = cmp.Compare(a.Conns, b.Conns)
		}
		if key.desc {
			c = -c
		}
		if st.reverse {
			c = -c
		}
		return cmp.Or(c, strings.Compare(a.Cluster, b.Cluster), strings.Compare(a.ID, b.ID))
	})
	return rows
}

// View renders the frame (view.go) in the alternate screen.
func (m *Model) View() tea.View {
	v := tea.NewView(m.Frame())
	v.AltScreen = true
	v.WindowTitle = "sozu top"
	return v
}
