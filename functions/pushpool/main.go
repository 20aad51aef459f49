// Command pushpool dispatches the due flow runs of a Prefect work pool with
// no worker: as a long-running local loop (serve), one pass at a time
// (dispatch-once, for cron and cloud schedulers), or to show the job a run
// would get (render). Run "pushpool help" for the flags.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// The first SIGINT/SIGTERM ends the context (graceful shutdown); a second
	// one arrives on hurry, for commands that wait on running jobs.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	hurry := make(chan struct{})
	go func() {
		<-sigs
		cancel()
		<-sigs
		close(hurry)
	}()
	os.Exit(run(ctx, hurry, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}
