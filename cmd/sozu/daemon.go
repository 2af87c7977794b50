package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/sirupsen/logrus"

	"github.com/sozu-go/sozu/sandbox"
	"github.com/sozu-go/sozu/supervisor"
	"github.com/sozu-go/sozu/supervisor/config"
	"github.com/sozu-go/sozu/worker"
	"github.com/sozu-go/sozu/worker/logfilter"
)

// runStart implements `sozu start`: it runs the supervisor in the
// foreground until a stop verb or signal. It returns the exit code: 0
// after a requested stop, 78 for an invalid configuration, 1 otherwise.
func runStart(configPath string, args []string) int {
	if len(args) > 0 {
		fmt.Fprintf(os.Stderr, "sozu start: unexpected argument %q\n", args[0])
		return exitUsage
	}
	// Whatever our parent left open without close-on-exec stays ours and
	// reaches no worker (docs/sandbox.md, "Inherited descriptors").
	if err := sandbox.SetCloseOnExecFrom(3); err != nil {
		fmt.Fprintf(os.Stderr, "sozu start: %v\n", err)
		return exitFailure
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sozu start: invalid configuration %s:\n%v\n", configPath, err)
		return exitConfig
	}
	log := logrus.New()
	log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, ForceColors: mainColored(cfg), DisableColors: !mainColored(cfg)})
	if lvl, err := logfilter.Parse(cfg.LogLevel); err == nil {
		log.SetLevel(lvl)
	}
	logs, notes, err := openLogTargets(cfg, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sozu start: %v\n", err)
		return exitConfig
	}
	defer logs.close()
	for _, n := range notes {
		log.Info(n)
	}
	for _, w := range cfg.Warnings {
		log.Warn(w.String())
	}
	for _, n := range cfg.Notes {
		log.Info(n.String())
	}
	s, err := supervisor.New(cfg, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sozu start: %v\n", err)
		return exitFailure
	}
	s.SetLogs(logs.supervisorLogs(cfg))
	if fd, ok := os.LookupEnv(supervisor.UpgradeEnv); ok { // the new supervisor of a hot upgrade
		os.Unsetenv(supervisor.UpgradeEnv)
		if err := s.Inherit(fd); err != nil {
			log.Errorf("sozu start: upgrade: %v", err)
			return exitFailure
		}
	}
	if err := s.Run(context.Background()); err != nil {
		if errors.Is(err, context.Canceled) {
			return 0
		}
		log.Errorf("sozu start: %v", err)
		fmt.Fprintf(os.Stderr, "sozu start: %v\n", err)
		return exitFailure
	}
	return 0
}

// runWorker implements the hidden `sozu worker` verb: a worker process
// re-executed by the supervisor. It returns the process exit code.
func runWorker(args []string) int {
	return worker.Main(args)
}
