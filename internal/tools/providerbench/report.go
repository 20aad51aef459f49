package main

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// format writes the report: one line a phase, then each phase's requests
// per resource by route.
func format(results []result, resources int, cfg config, prefectVersion, db string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Terraform provider: plan, apply and destroy of %d resources, %s\n", resources, time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "%s, %d CPUs; Prefect %s on %s; terraform -parallelism=%d. Produced by `make bench` (internal/tools/providerbench).\n",
		runtime.Version(), runtime.NumCPU(), prefectVersion, db, cfg.parallelism)
	fmt.Fprintf(&b, "Per unit: a work pool with a base job template, a work queue, a flow, 4 deployments on the pool (job variables\n"+
		"checked against its template at plan time), 2 cron schedules, a variable; %d units. The provider reaches Prefect\n"+
		"through a counting proxy; retryable = answers with a status the provider retries (408, 429, 5xx; must be 0 on\n"+
		"PostgreSQL; on SQLite the server's own background writes conflict with the provider's writes, one at a time).\n\n", cfg.units)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\twall s\trequests\treq/resource\tretryable\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%.1f\t%d\t%.2f\t%d\t\n", r.name, r.wall.Seconds(), r.total, float64(r.total)/float64(resources), sum(r.retryable))
	}
	_ = tw.Flush()
	fmt.Fprintln(&b, "\nRequests per resource by route:")
	for _, r := range results {
		keys := make([]string, 0, len(r.requests))
		for k := range r.requests {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			if r.requests[keys[i]] != r.requests[keys[j]] {
				return r.requests[keys[i]] > r.requests[keys[j]]
			}
			return keys[i] < keys[j]
		})
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s %.2f", k, float64(r.requests[k])/float64(resources))
		}
		fmt.Fprintf(&b, "  %s: %s\n", r.name, strings.Join(parts, ", "))
		if len(r.retryable) > 0 {
			fmt.Fprintf(&b, "    retryable answers: %v\n", r.retryable)
		}
	}
	return b.String()
}
