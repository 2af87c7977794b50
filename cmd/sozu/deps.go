package main

import (
	"io"
	"math"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/frame"
	"github.com/sozu-go/sozu/supervisor/config"
)

// This file is the CLI's contact with the frame codec and the
// configuration loader.

// defaultMaxFrame bounds frames when the configuration gives no maximum.
const defaultMaxFrame = frame.DefaultMaxSize

func newFrameReader(r io.Reader, max int) *frame.Reader { return frame.NewReader(r, max) }

func writeFrame(w io.Writer, m proto.Message, max int) error { return frame.WriteMessage(w, m, max) }

// clientConfig is what the CLI needs from the configuration file.
type clientConfig struct {
	socket   string        // absolute path of the command socket
	maxFrame int           // max_command_buffer_size
	timeout  time.Duration // ctl_command_timeout when set, else 0
}

// loadClientConfig reads the client keys of the configuration at path
// (config.LoadClient): it opens no certificate, key or answer file, so an
// operator who may not read those still runs the verbs. Its error is the
// loader's (a config.Errors list, one problem per item).
func loadClientConfig(path string) (clientConfig, error) {
	cfg, err := config.LoadClient(path)
	if err != nil {
		return clientConfig{}, err
	}
	return clientConfig{socket: cfg.CommandSocket, maxFrame: int(min(cfg.MaxCommandBufferSize, math.MaxInt32)), timeout: cfg.CtlCommandTimeout}, nil
}

// checkFullConfig loads and validates the whole configuration at path,
// reading every file it names, as `sozu start` does, and returns its
// warnings and notes, one line each.
func checkFullConfig(path string) (warnings, notes []string, err error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range cfg.Warnings {
		warnings = append(warnings, w.String())
	}
	for _, n := range cfg.Notes {
		notes = append(notes, n.String())
	}
	return warnings, notes, nil
}
