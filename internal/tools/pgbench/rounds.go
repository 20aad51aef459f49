package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/pushpool/pushpool/dispatch"
)

// burstJob is one burst of a round: a ceiling variant or a contender.
type burstJob struct {
	name    string
	ceiling bool
	run     func(ctx context.Context) (burstResult, error)
}

// burstJobs lists the bursts of the chosen scenarios, in the order a
// round runs them: the ceiling variants, Prefect's worker, pushpool serve
// and its variants (the -pushpool-all binary's, without run labels), the
// Lambda handler.
func burstJobs(s *stack, opts options, cfg burstConfig) []burstJob {
	var jobs []burstJob
	contender := func(c contender, label string) burstJob {
		return burstJob{name: c.name, run: func(ctx context.Context) (burstResult, error) { return runBurst(ctx, s, c, label, cfg) }}
	}
	for _, sc := range opts.scenarios {
		switch sc {
		case "ceiling":
			for _, v := range opts.ceiling {
				jobs = append(jobs, burstJob{name: v.name(), ceiling: true, run: func(ctx context.Context) (burstResult, error) {
					res, err := runCeiling(ctx, s, v, cfg)
					if err != nil {
						err = fmt.Errorf("ceiling: %w", err)
					}
					return res, err
				}})
			}
		case "worker":
			jobs = append(jobs, contender(workerContender(), "worker"))
		case "serve":
			jobs = append(jobs, contender(serveContender(), "serve"))
			if opts.pushpoolAll != "" {
				jobs = append(jobs, contender(serveContenderOf(nameServeAll, opts.pushpoolAll, nil), "serve-all"))
			}
			jobs = append(jobs, contender(serveContenderOf(nameServeNoLabels, "", map[string]string{dispatch.EnvRunLabels: "false"}), "serve-no-labels"))
		case "lambda":
			jobs = append(jobs, contender(lambdaContender(lambdaInvocationTimeout), "lambda"))
		}
	}
	return jobs
}

// runRounds runs every job once per round, in turn, so that each
// contender meets the machine's changing load as the others do, and
// returns each job's median round (by runs/s) with every round's runs/s:
// the ceiling variants, then the contenders.
func runRounds(ctx context.Context, jobs []burstJob, rounds int, log *slog.Logger) (ceiling, contenders []burstResult, err error) {
	all := make([][]burstResult, len(jobs))
	for round := 1; round <= rounds; round++ {
		for i, j := range jobs {
			log.Info("burst", "round", round, "of", rounds, "job", j.name)
			res, err := j.run(ctx)
			if err != nil {
				return nil, nil, err
			}
			all[i] = append(all[i], res)
		}
	}
	for i, j := range jobs {
		med := median(all[i])
		if j.ceiling {
			ceiling = append(ceiling, med)
		} else {
			contenders = append(contenders, med)
		}
	}
	return ceiling, contenders, nil
}

// median returns the round with the median throughput (the lower of the
// two middle ones for an even count), with every round's throughput in
// the order they ran.
func median(rounds []burstResult) burstResult {
	var speeds []float64
	for _, r := range rounds {
		speeds = append(speeds, r.runsPerSecond())
	}
	sorted := slices.Clone(rounds)
	slices.SortStableFunc(sorted, func(a, b burstResult) int { return cmp.Compare(a.runsPerSecond(), b.runsPerSecond()) })
	m := sorted[(len(sorted)-1)/2]
	m.rounds = speeds
	return m
}
