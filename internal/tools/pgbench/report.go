package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// report is everything one pgbench run measured.
type report struct {
	when        time.Time
	environment string
	burstRuns   int
	rounds      int
	ceiling     []burstResult
	contenders  []burstResult // worker, serve, Lambda, in that order when measured
	lateness    []latenessResult
	latenessCfg latenessConfig
	reconcile   *reconcileResult
}

// Contender names the report looks up.
const (
	nameWorker = "prefect worker (ecs)"
	nameServe  = "pushpool serve"
	// nameServeAll is serve of the -pushpool-all binary.
	nameServeAll = "pushpool serve, all backends"
	// nameServeNoLabels is serve with PUSHPOOL_RUN_LABELS=false.
	nameServeNoLabels = "pushpool serve, no run labels"
	nameLambda        = "Lambda tick handler"
)

// bestCeiling is the ceiling at the concurrency that did best, and false
// when none was measured, among the variants that label and read as
// asked.
func (r report) bestCeiling(labels, read bool) (burstResult, bool) {
	var best burstResult
	found := false
	for _, c := range r.ceiling {
		if c.variant.labels != labels || c.variant.read != read {
			continue
		}
		if !found || c.runsPerSecond() > best.runsPerSecond() {
			best, found = c, true
		}
	}
	return best, found
}

// contender returns the burst of the named contender.
func (r report) contender(name string) (burstResult, bool) {
	for _, c := range r.contenders {
		if c.name == name {
			return c, true
		}
	}
	return burstResult{}, false
}

// machineLines are the lines scripts read from bench/results.txt, always
// in this order and shape; a figure that was not measured is "n/a".
func (r report) machineLines() []string {
	na := "n/a"
	serve, okServe := r.contender(nameServe)
	worker, okWorker := r.contender(nameWorker)
	best, okBest := r.bestCeiling(false, false)
	lines := []string{
		"ratio pushpool/ceiling = " + na,
		"ratio pushpool/worker = " + na,
		"prefect requests/run = " + na,
		"reconcile aws calls/pass (1000 running) = " + na,
		"serve peak rss MiB = " + na,
	}
	if okServe && okBest {
		lines[0] = fmt.Sprintf("ratio pushpool/ceiling = %.2f", ratio(serve.runsPerSecond(), best.runsPerSecond()))
	}
	if okServe && okWorker {
		lines[1] = fmt.Sprintf("ratio pushpool/worker = %.2f", ratio(serve.runsPerSecond(), worker.runsPerSecond()))
	}
	if okServe {
		lines[2] = fmt.Sprintf("prefect requests/run = %.1f", serve.perRun(serve.prefect.total()))
		lines[4] = fmt.Sprintf("serve peak rss MiB = %d", int(math.Round(float64(serve.peakRSS)/(1<<20))))
	}
	if r.reconcile != nil {
		lines[3] = fmt.Sprintf("reconcile aws calls/pass (%d running) = %d", r.reconcile.runs, r.reconcile.single.aws.total())
	}
	// Beyond the five: serve against the least a dispatcher that labels
	// runs as Prefect's workers do must ask of the server, and serve without
	// run labels against the ceiling.
	compat, okCompat := r.bestCeiling(true, true)
	noLabels, okNoLabels := r.contender(nameServeNoLabels)
	extra := []string{"ratio pushpool/ceiling + read + labels = " + na, "ratio pushpool no run labels/ceiling = " + na}
	if okServe && okCompat {
		extra[0] = fmt.Sprintf("ratio pushpool/ceiling + read + labels = %.2f", ratio(serve.runsPerSecond(), compat.runsPerSecond()))
	}
	if okNoLabels && okBest {
		extra[1] = fmt.Sprintf("ratio pushpool no run labels/ceiling = %.2f", ratio(noLabels.runsPerSecond(), best.runsPerSecond()))
	}
	return append(lines, extra...)
}

// write writes the whole PostgreSQL report: the side-by-side table, the
// per-run request mix, the lateness and reconcile tables, and the
// machine-readable lines.
func (r report) write(w io.Writer) error {
	fmt.Fprintf(w, "pushpool vs Prefect's ECS worker on PostgreSQL, %s\n", r.when.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "%s, %d CPUs; %s. Produced by `make bench` (internal/tools/pgbench).\n", runtime.Version(), runtime.NumCPU(), r.environment)
	fmt.Fprintf(w, "Each contender gets a fresh ECS pool (prefect-aws's default template, FARGATE) and %d runs due at once, created before it starts, and reaches Prefect and moto through counting proxies. "+
		"runs/s = runs / (last infrastructure_pid recorded - first claim), server timestamps (first PENDING state; a trigger on flow_run.infrastructure_pid). "+
		"Requests and CPU cover the burst window: from the contender's first get_scheduled_flow_runs until it has been quiet for 3 s after the last pid (its log flushes and the reconcile pass after a dispatch pass included); "+
		"startup before it is listed apart. CPU total and peak RSS are the process's (and children's) whole life, from wait4. The server's late-runs service is off.\n"+
		"Rounds: %d. Each round runs every row once, in the order listed, so each meets the machine's changing load as the others do; a row shows its median round (its other figures are that round's) and every round's runs/s, and ratios are of medians. "+
		"The ceiling + labels rows also label each run as Prefect's workers and pushpool do (PATCH /flow_runs/{id}/labels: Prefect 3.9's API writes labels and infrastructure_pid in no one request); + read also reads the due runs from the pool instead of being handed their ids.\n\n", r.burstRuns, max(r.rounds, 1))
	if err := r.writeBursts(w); err != nil {
		return err
	}
	r.writeMix(w)
	if err := r.writeLateness(w); err != nil {
		return err
	}
	r.writeReconcile(w)
	fmt.Fprintln(w)
	for _, l := range r.machineLines() {
		fmt.Fprintln(w, l)
	}
	return nil
}

func (r report) writeBursts(w io.Writer) error {
	if len(r.ceiling) == 0 && len(r.contenders) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "contender\truns\trecorded\tfirst claim s\truns/s\truns/s of each round\tvs ceiling\tvs ceiling + labels\tPrefect req/run\tAWS calls/run\tCPU s burst\tCPU s total\tpeak RSS MiB\t")
	best, okBest := r.bestCeiling(false, false)
	bestLabelled, okLabelled := r.bestCeiling(true, false)
	bestCompat, okCompat := r.bestCeiling(true, true)
	row := func(name string, b burstResult, cpu bool) {
		vs, vsLabelled := "-", "-"
		if okBest {
			vs = fmt.Sprintf("%.2f", ratio(b.runsPerSecond(), best.runsPerSecond()))
		}
		if okLabelled {
			vsLabelled = fmt.Sprintf("%.2f", ratio(b.runsPerSecond(), bestLabelled.runsPerSecond()))
		}
		cpuBurst, cpuTotal, rss := "-", "-", "-"
		if cpu && b.measuredCPU {
			cpuBurst = fmt.Sprintf("%.1f", b.cpuWindow.Seconds())
			cpuTotal = fmt.Sprintf("%.1f", b.cpuTotal.Seconds())
			rss = fmt.Sprintf("%.0f", float64(b.peakRSS)/(1<<20))
		}
		aws := "-"
		if cpu {
			aws = fmt.Sprintf("%.1f", b.perRun(b.aws.total()))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f\t%s\t%s\t%s\t%.1f\t%s\t%s\t%s\t%s\t\n", name, b.span.runs, b.span.recorded,
			b.firstClaimAfter.Seconds(), b.runsPerSecond(), roundsText(b.rounds), vs, vsLabelled, b.perRun(b.prefect.total()), aws, cpuBurst, cpuTotal, rss)
	}
	for _, c := range r.ceiling {
		row(c.name, c, false)
	}
	if okBest {
		row("ceiling (best)", best, false)
	}
	if okLabelled {
		row("ceiling + labels (best)", bestLabelled, false)
	}
	if okCompat {
		row("ceiling + read + labels (best)", bestCompat, false)
	}
	for _, c := range r.contenders {
		row(c.name, c, true)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range append(append([]burstResult(nil), r.ceiling...), r.contenders...) {
		for _, n := range c.notes {
			fmt.Fprintf(w, "  %s: %s\n", c.name, n)
		}
	}
	fmt.Fprintln(w)
	return r.writeServers(w)
}

// roundsText lists the runs/s of each round, "-" when there is one.
func roundsText(rounds []float64) string {
	if len(rounds) < 2 {
		return "-"
	}
	parts := make([]string, len(rounds))
	for i, r := range rounds {
		parts[i] = fmt.Sprintf("%.1f", r)
	}
	return strings.Join(parts, " ")
}

// writeServers lists what each burst cost the shared servers per run.
func (r report) writeServers(w io.Writer) error {
	all := append(append([]burstResult(nil), r.ceiling...), r.contenders...)
	fmt.Fprintln(w, "CPU of the shared servers per run over each burst window (whoever caused it; the ceiling's window also ends 3 s after its last request), ms:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "contender\tPrefect server\tPostgreSQL\tmoto\tall three\t")
	for _, b := range all {
		if !b.measuredServers {
			continue
		}
		ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", b.perRun(d.Milliseconds())) }
		sv := b.servers
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", b.name, ms(sv.prefect), ms(sv.postgres), ms(sv.moto), ms(sv.prefect+sv.postgres+sv.moto))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return nil
}

// writeMix lists each contender's requests per run by route and action.
func (r report) writeMix(w io.Writer) {
	if len(r.contenders) == 0 {
		return
	}
	fmt.Fprintln(w, "Requests per run in the burst window (startup: before the first poll, whole):")
	for _, c := range r.contenders {
		fmt.Fprintf(w, "  %s\n", c.name)
		fmt.Fprintf(w, "    Prefect %s\n", mix(c.prefect, c.span.runs))
		fmt.Fprintf(w, "    AWS     %s\n", mix(c.aws, c.span.runs))
		fmt.Fprintf(w, "    startup: %d Prefect requests (%s); %d AWS calls (%s)\n",
			c.startupPrefect.total(), counts(c.startupPrefect), c.startupAWS.total(), counts(c.startupAWS))
	}
	if _, ok := r.contender(nameWorker); ok {
		fmt.Fprintln(w, "  The worker also emits two events per run over its events websocket (prefect.worker.submitted-flow-run and")
		fmt.Fprintln(w, "  prefect.worker.executed-flow-run); they are not HTTP requests and are not counted. pushpool emits none.")
	}
	fmt.Fprintln(w)
}

// mix formats a tally as per-run figures, most frequent first.
func mix(t tally, runs int) string {
	if len(t) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(t))
	for _, k := range t.byCount() {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, float64(t[k])/float64(max(runs, 1))))
	}
	return strings.Join(parts, ", ")
}

// counts formats a tally as absolute counts, most frequent first.
func counts(t tally) string {
	if len(t) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(t))
	for _, k := range t.byCount() {
		parts = append(parts, fmt.Sprintf("%s %d", k, t[k]))
	}
	return strings.Join(parts, ", ")
}

func (r report) writeLateness(w io.Writer) error {
	if len(r.lateness) == 0 {
		return nil
	}
	c := r.latenessCfg
	fmt.Fprintf(w, "Due-time lateness: %d runs per variant due at random over %s (the same times for each), the four variants served at once; "+
		"ms from due to claim (first PENDING) and to infrastructure recorded; negative is early (prefetch).\n", c.runs, c.spread)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "variant\truns\tclaim p50\tclaim p95\tclaim max\trecorded p50\trecorded p95\trecorded max\t")
	ms := func(d time.Duration) string { return fmt.Sprintf("%d", d.Milliseconds()) }
	for _, l := range r.lateness {
		fmt.Fprintf(tw, "%s\t%d/%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", l.name, l.recorded, l.runs,
			ms(l.claim.p50), ms(l.claim.p95), ms(l.claim.max), ms(l.start.p50), ms(l.start.p95), ms(l.start.max))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, l := range r.lateness {
		for _, n := range l.notes {
			fmt.Fprintf(w, "  %s: %s\n", l.name, n)
		}
	}
	fmt.Fprintln(w)
	return nil
}

func (r report) writeReconcile(w io.Writer) {
	rc := r.reconcile
	if rc == nil {
		return
	}
	fmt.Fprintf(w, "Reconcile passes over %d RUNNING ECS runs (one moto task per attempt, pushpool's pid and labels; set up in %s), in-process through dispatch.New + dispatch.NewReconciler, counting HTTP clients:\n",
		rc.runs, rc.setup.Round(time.Second))
	for _, p := range []struct {
		name string
		c    passCost
	}{
		{"1 dispatcher, 1 pass (RunOnce)", rc.single},
		{"1 dispatcher, passes until every RUNNING run was checked once", rc.rotation},
		{fmt.Sprintf("%d dispatchers, 1 RunOnce each, at once", rc.fleetSize), rc.fleetOnce},
		{fmt.Sprintf("%d dispatchers, 1 RunLeased each (the pool's reconcile lease, as serve), at once", rc.fleetSize), rc.fleetLeased},
	} {
		fmt.Fprintf(w, "  %s: %d passes made, %d runs checked; %d AWS calls, %d Prefect requests; %.1f s; actions %v\n",
			p.name, p.c.passes, p.c.checked, p.c.aws.total(), p.c.prefect.total(), p.c.took.Seconds(), p.c.actions)
		fmt.Fprintf(w, "    AWS     %s\n", counts(p.c.aws))
		fmt.Fprintf(w, "    Prefect %s\n", counts(p.c.prefect))
		for _, err := range p.c.errs {
			fmt.Fprintf(w, "    error: %v\n", err)
		}
	}
}
