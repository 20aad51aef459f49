// Command chaos is make chaos: the full form of the chaos test of
// internal/chaos (1,000 runs, 8 dispatchers, 12% faults, random SIGKILLs)
// against a real Prefect server on PostgreSQL and moto. It prints the
// report and exits 1 when a run started twice or was lost.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pushpool/pushpool/internal/chaos"
)

func main() { os.Exit(run()) }

func run() int {
	cfg := chaos.Config{Log: os.Stderr}
	flag.IntVar(&cfg.Runs, "runs", 1000, "flow runs to dispatch")
	flag.IntVar(&cfg.Dispatchers, "dispatchers", 8, "pushpool serve processes")
	flag.DurationVar(&cfg.Spread, "spread", 60*time.Second, "the runs' due times spread over this long")
	flag.Float64Var(&cfg.FaultRate, "faults", 0.12, "share of requests to Prefect and AWS that get a fault")
	flag.DurationVar(&cfg.KillEvery, "kill-every", 3*time.Second, "mean time between SIGKILLs of a random dispatcher")
	flag.DurationVar(&cfg.Deadline, "deadline", 25*time.Minute, "longest the whole run may take")
	flag.Uint64Var(&cfg.Seed, "seed", 0, "seed of the faults and kills (0: from the clock)")
	flag.StringVar(&cfg.Pushpool, "pushpool", "", "pushpool binary (default: built from this checkout)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.Pushpool == "" {
		dir, err := os.MkdirTemp("", "pushpool-chaos-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		if cfg.Pushpool, err = chaos.BuildPushpool(ctx, dir); err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			return 1
		}
	}
	rep, err := chaos.Run(ctx, cfg)
	fmt.Print(rep)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	if !rep.OK() {
		return 1
	}
	return 0
}
