package top

import (
	"context"
	"errors"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/sozu-go/sozu/proto/command"
)

// Conn is one connection to the command socket, used by one goroutine:
// Do sends a request and returns its terminal answer.
type Conn interface {
	Do(ctx context.Context, req *command.Request) (*command.Response, error)
	Close() error
}

// Stream is an event subscription: Recv returns the next response; Close
// ends it (and wakes a blocked Recv).
type Stream interface {
	Recv() (*command.Response, error)
	Close() error
}

// Source is how top reaches the proxy: only its command socket.
type Source struct {
	Dial      func() (Conn, error)
	Subscribe func() (Stream, error)
	// Every is the metrics period (default one second); the inventory is
	// read every inventoryPeriod of them.
	Every time.Duration
	// Timeout bounds each query (default two seconds).
	Timeout time.Duration
}

// Run shows the view on in/out until the operator quits (q, Ctrl-C) or a
// SIGTERM or SIGINT arrives; the terminal is restored in every case. It
// returns nil then, or the error that stopped the program.
func Run(src Source, in io.Reader, out io.Writer, opts ...tea.ProgramOption) error {
	p := tea.NewProgram(New(), append([]tea.ProgramOption{tea.WithInput(in), tea.WithOutput(out)}, opts...)...)
	ctx, cancel := context.WithCancel(context.Background())
	refresh := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Go(func() { src.poll(ctx, p.Send, refresh) })
	wg.Go(func() { src.follow(ctx, p.Send, refresh) })
	_, err := p.Run()
	cancel()
	wg.Wait()
	if errors.Is(err, tea.ErrInterrupted) {
		return nil
	}
	return err
}

func (s Source) every() time.Duration {
	if s.Every > 0 {
		return s.Every
	}
	return time.Second
}

func (s Source) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return 2 * time.Second
}

// poll queries the metrics every period and the inventory every
// inventoryPeriod periods, or at once when refresh is signalled (an event
// said the configuration changed), on one connection (redialled after an
// error), sending each answer to the model as a message. It never blocks
// the UI: send only queues.
func (s Source) poll(ctx context.Context, send func(tea.Msg), refresh <-chan struct{}) {
	var conn Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	ask := func(req *command.Request) (*command.Response, string) {
		if conn == nil {
			c, err := s.Dial()
			if err != nil {
				return nil, err.Error()
			}
			conn = c
		}
		qctx, cancel := context.WithTimeout(ctx, s.timeout())
		defer cancel()
		resp, err := conn.Do(qctx, req)
		if err != nil {
			conn.Close()
			conn = nil
			return nil, err.Error()
		}
		if resp.GetStatus() != command.ResponseStatus_OK {
			return nil, resp.GetMessage()
		}
		return resp, ""
	}
	t := time.NewTicker(s.every())
	defer t.Stop()
	inventoryNow := false
	for n := 0; ; n++ {
		if inventoryNow {
			n, inventoryNow = 0, false
		}
		metrics, err := ask(&command.Request{RequestType: &command.Request_QueryMetrics{QueryMetrics: &command.QueryMetricsOptions{
			List: ptr(false), NoClusters: ptr(false), Workers: ptr(false)}}})
		send(MetricsMsg{At: time.Now(), M: metrics.GetContent().GetMetrics(), Err: err})
		if n%inventoryPeriod == 0 {
			l, err := ask(&command.Request{RequestType: &command.Request_ListListeners{ListListeners: &command.ListListeners{}}})
			send(ListenersMsg{At: time.Now(), L: l.GetContent().GetListenersList(), Err: err})
			c, err := ask(&command.Request{RequestType: &command.Request_QueryCertificatesFromTheState{QueryCertificatesFromTheState: &command.QueryCertificatesFilters{}}})
			send(CertsMsg{At: time.Now(), C: c.GetContent().GetCertificatesWithFingerprints(), Err: err})
			cl, err := s.clusters(ask)
			send(ClustersMsg{At: time.Now(), Clusters: cl, Err: err})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-refresh:
			inventoryNow = true
		}
	}
}

// clusters reads the clusters of the state: their ids, then each one.
func (s Source) clusters(ask func(*command.Request) (*command.Response, string)) ([]*command.ClusterInformation, string) {
	h, err := ask(&command.Request{RequestType: &command.Request_QueryClustersHashes{QueryClustersHashes: &command.QueryClustersHashes{}}})
	if err != "" {
		return nil, err
	}
	ids := slices.Sorted(maps.Keys(h.GetContent().GetWorkerResponses().GetMap()["main"].GetClusterHashes().GetMap()))
	out := make([]*command.ClusterInformation, 0, len(ids))
	for _, id := range ids {
		r, err := ask(&command.Request{RequestType: &command.Request_QueryClusterById{QueryClusterById: id}})
		if err != "" {
			return nil, err
		}
		out = append(out, r.GetContent().GetWorkerResponses().GetMap()["main"].GetClusters().GetVec()...)
	}
	return out, ""
}

// follow keeps an event subscription open, resubscribing a period after
// it ends, and sends each event to the model; an event that changes the
// state's inventory asks the poller to read it again.
func (s Source) follow(ctx context.Context, send func(tea.Msg), refresh chan<- struct{}) {
	for ctx.Err() == nil {
		st, err := s.Subscribe()
		if err != nil {
			send(StreamMsg{At: time.Now(), Err: err.Error()})
		} else {
			stop := context.AfterFunc(ctx, func() { st.Close() })
			send(StreamMsg{At: time.Now()})
			for {
				r, err := st.Recv()
				if err != nil {
					if ctx.Err() == nil {
						send(StreamMsg{At: time.Now(), Err: "event stream ended: " + err.Error()})
					}
					break
				}
				if r.GetStatus() == command.ResponseStatus_FAILURE {
					send(StreamMsg{At: time.Now(), Err: r.GetMessage()})
					break
				}
				if ev := r.GetContent().GetEvent(); ev != nil {
					send(EventMsg{At: time.Now(), Source: r.GetMessage(), Ev: ev})
					if changesInventory(ev.GetKind()) {
						select {
						case refresh <- struct{}{}:
						default: // a refresh is already due
						}
					}
				}
			}
			stop()
			st.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(s.every()):
		}
	}
}

// changesInventory reports whether an event kind follows a change of the
// clusters, backends, listeners or certificates of the state.
func changesInventory(k command.EventKind) bool {
	switch k {
	case command.EventKind_CLUSTER_ADDED, command.EventKind_CLUSTER_REMOVED,
		command.EventKind_FRONTEND_ADDED, command.EventKind_FRONTEND_REMOVED,
		command.EventKind_CERTIFICATE_ADDED, command.EventKind_CERTIFICATE_REMOVED, command.EventKind_CERTIFICATE_REPLACED,
		command.EventKind_LISTENER_ADDED, command.EventKind_LISTENER_REMOVED, command.EventKind_LISTENER_UPDATED,
		command.EventKind_LISTENER_ACTIVATED, command.EventKind_LISTENER_DEACTIVATED,
		command.EventKind_REMOVED_BACKEND_HAS_NO_CONNECTIONS, command.EventKind_STATE_LOADED, command.EventKind_CONFIGURATION_RELOADED:
		return true
	}
	return false
}

func ptr[T any](v T) *T { return &v }
