package main

import (
	"fmt"
	"os"
)

// runStart implements `sozu start`: it runs the supervisor in the
// foreground until it is stopped. It returns the process exit code.
// (Owned by the supervisor work; the CLI only dispatches to it.)
func runStart(configPath string, args []string) int {
	fmt.Fprintln(os.Stderr, "sozu start: not implemented yet")
	return 1
}

// runWorker implements the hidden `sozu worker` verb: a worker process
// re-executed by the supervisor. It returns the process exit code.
func runWorker(args []string) int {
	fmt.Fprintln(os.Stderr, "sozu worker: not implemented yet")
	return 1
}
