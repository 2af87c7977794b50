// Package worker is a Sōzu worker process: it receives its configuration,
// state and listening sockets from the supervisor, and carries the traffic.
package worker

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"

	"github.com/sirupsen/logrus"
	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
	"github.com/sozu-go/sozu/proto/frame"
	"github.com/sozu-go/sozu/proto/state"
)

// Descriptors a worker inherits from the supervisor.
const (
	channelFD = 3 // framed WorkerRequest/WorkerResponse channel
	scmFD     = 4 // listener descriptors over SCM_RIGHTS
	stateFD   = 5 // InitialState, raw protobuf
)

// maxInitialState bounds the initial state a worker reads at start.
const maxInitialState = 256 << 20

// Worker is one worker's runtime. It is driven by a single goroutine (the
// command loop), which owns every field.
type Worker struct {
	id    uint32
	cfg   *command.ServerConfig
	log   *logrus.Entry
	state *state.ConfigState
	lis   *listenerSet
	conn  net.Conn
	max   int

	frames *frame.Reader
}

// Main runs a worker process (`sozu worker --id N`, started by the
// supervisor only) and returns its exit code.
func Main(args []string) int {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	id := fs.Uint("id", 0, "worker id assigned by the supervisor")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger := logrus.New()
	logger.SetOutput(os.Stderr)
	log := logger.WithField("worker", *id)

	w, err := bootstrap(uint32(*id), log)
	if err != nil {
		log.Errorf("bootstrap: %v", err)
		return 1
	}
	if lvl, err := logrus.ParseLevel(w.cfg.GetLogLevel()); err == nil {
		logger.SetLevel(lvl)
	}
	return w.serve()
}

// bootstrap reads what the supervisor hands a new worker: ServerConfig as
// the first frame on the channel, the listeners over SCM_RIGHTS, and the
// initial state from its own descriptor, which it then applies.
func bootstrap(id uint32, log *logrus.Entry) (*Worker, error) {
	ch := os.NewFile(channelFD, "channel")
	conn, err := net.FileConn(ch)
	ch.Close()
	if err != nil {
		return nil, fmt.Errorf("channel fd %d: %w", channelFD, err)
	}
	cfg := &command.ServerConfig{}
	r := frame.NewReader(conn, frame.DefaultMaxSize)
	if err := r.ReadMessage(cfg); err != nil {
		return nil, fmt.Errorf("reading ServerConfig: %w", err)
	}
	max := int(cfg.GetMaxCommandBufferSize())

	lis, err := newListenerSet(scmFD)
	if err != nil {
		return nil, err
	}
	if err := lis.receive(true); err != nil {
		return nil, fmt.Errorf("receiving listeners: %w", err)
	}

	sf := os.NewFile(stateFD, "initial-state")
	b, err := io.ReadAll(io.LimitReader(sf, maxInitialState+1))
	sf.Close()
	if err != nil {
		return nil, fmt.Errorf("reading initial state: %w", err)
	}
	if len(b) > maxInitialState {
		return nil, fmt.Errorf("initial state larger than %d bytes", maxInitialState)
	}
	init := &command.InitialState{}
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(b, init); err != nil {
		return nil, fmt.Errorf("decoding initial state: %w", err)
	}

	w := &Worker{id: id, cfg: cfg, log: log, state: state.New(), lis: lis, conn: conn, max: max}
	for _, wr := range init.GetRequests() {
		if resp := w.handle(wr); resp.GetStatus() == command.ResponseStatus_FAILURE {
			log.Warnf("initial state record %s (%s): %s", wr.GetId(), command.VerbName(wr.GetContent()), resp.GetMessage())
		}
	}
	w.frames = r
	return w, nil
}

// serve answers the supervisor's requests until the channel closes or a
// stop verb arrives.
func (w *Worker) serve() int {
	for {
		wr := &command.WorkerRequest{}
		if err := w.frames.ReadMessage(wr); err != nil {
			if errors.Is(err, io.EOF) {
				w.log.Info("supervisor closed the channel: exiting")
				return 0
			}
			w.log.Errorf("reading the channel: %v", err)
			return 1
		}
		resp := w.handle(wr)
		if err := frame.WriteMessage(w.conn, resp, w.max); err != nil {
			w.log.Errorf("answering %s: %v", wr.GetId(), err)
			return 1
		}
		switch wr.GetContent().GetRequestType().(type) {
		case *command.Request_SoftStop, *command.Request_HardStop:
			w.lis.closeAll()
			w.log.Info("stopped")
			return 0
		}
	}
}

// handle applies one request and builds its answer.
func (w *Worker) handle(wr *command.WorkerRequest) *command.WorkerResponse {
	content, err := w.apply(wr.GetContent())
	resp := &command.WorkerResponse{Id: proto.String(wr.GetId()), Content: content}
	if err != nil {
		resp.Status = command.ResponseStatus_FAILURE.Enum()
		resp.Message = proto.String(err.Error())
	} else {
		resp.Status = command.ResponseStatus_OK.Enum()
		resp.Message = proto.String("")
	}
	return resp
}

func (w *Worker) apply(req *command.Request) (*command.ResponseContent, error) {
	switch r := req.GetRequestType().(type) {
	case *command.Request_Status, *command.Request_SoftStop, *command.Request_HardStop:
		return nil, nil
	case *command.Request_Logging:
		lvl, err := logrus.ParseLevel(r.Logging)
		if err != nil {
			return nil, fmt.Errorf("invalid log level %q", r.Logging)
		}
		w.log.Logger.SetLevel(lvl)
		return nil, nil
	case *command.Request_QueryClusterById:
		infos := &command.ClusterInformations{}
		if ci := w.state.Cluster(r.QueryClusterById); ci != nil {
			infos.Vec = append(infos.Vec, ci)
		}
		return &command.ResponseContent{ContentType: &command.ResponseContent_Clusters{Clusters: infos}}, nil
	case *command.Request_QueryClustersByDomain:
		q := r.QueryClustersByDomain
		return &command.ResponseContent{ContentType: &command.ResponseContent_Clusters{Clusters: &command.ClusterInformations{
			Vec: w.state.ClustersByDomain(q.GetHostname(), q.Path)}}}, nil
	case *command.Request_QueryClustersHashes:
		return &command.ResponseContent{ContentType: &command.ResponseContent_ClusterHashes{ClusterHashes: &command.ClusterHashes{Map: w.state.ClusterHashes()}}}, nil
	}

	if err := w.state.Dispatch(req); err != nil {
		var se *state.Error
		if errors.As(err, &se) && se.Kind == state.NotStateVerb {
			return nil, fmt.Errorf("not implemented: %s", command.VerbKey(req))
		}
		return nil, err
	}
	switch r := req.GetRequestType().(type) {
	case *command.Request_ActivateListener:
		if err := w.lis.activate(r.ActivateListener.GetProxy(), r.ActivateListener.GetAddress().Display()); err != nil {
			return nil, err
		}
	case *command.Request_DeactivateListener:
		w.lis.deactivate(r.DeactivateListener.GetProxy(), r.DeactivateListener.GetAddress().Display())
	case *command.Request_RemoveListener:
		w.lis.deactivate(r.RemoveListener.GetProxy(), r.RemoveListener.GetAddress().Display())
	}
	return nil, nil
}

func (w *Worker) String() string { return "worker " + strconv.FormatUint(uint64(w.id), 10) }
