package fnapp

import (
	"context"
	"log/slog"

	"github.com/pushpool/pushpool/dispatch/invoke"
)

// TickReply is what a tick answers on every platform (the invocation's
// result, visible in the platform's console and logs).
type TickReply struct {
	Pools []PoolReply `json:"pools,omitempty"`
	// Skipped says why a tick did no work (a stale redelivery).
	Skipped string `json:"skipped,omitempty"`
}

// PoolReply is one pool's part of a TickReply.
type PoolReply struct {
	Pool       string         `json:"work_pool"`
	Outcomes   map[string]int `json:"outcomes,omitempty"`
	Shards     int            `json:"shards,omitempty"`
	Fanned     int            `json:"fanned_out,omitempty"`
	Woken      int            `json:"wake_ups,omitempty"`
	Reconciled map[string]int `json:"reconciled,omitempty"`
	Error      string         `json:"error,omitempty"`
}

// Summarise counts a tick's outcomes per pool and logs one line per pool.
func Summarise(ctx context.Context, res invoke.TickResult, log *slog.Logger) TickReply {
	var out TickReply
	for _, p := range res.Pools {
		pr := PoolReply{Pool: p.Pool, Shards: p.Shards, Fanned: p.Fanned, Woken: p.Woken, Outcomes: map[string]int{}, Reconciled: map[string]int{}}
		for _, r := range p.Dispatch.Runs {
			pr.Outcomes[string(r.Outcome)]++
		}
		for _, c := range p.Reconcile.Runs {
			pr.Reconciled[string(c.Action)]++
		}
		if p.Err != nil {
			pr.Error = p.Err.Error()
		}
		out.Pools = append(out.Pools, pr)
		log.InfoContext(ctx, "tick", slog.String("work_pool", p.Pool), slog.Any("outcomes", pr.Outcomes), slog.Int("shards", p.Shards),
			slog.Int("wake_ups", p.Woken), slog.Any("reconciled", pr.Reconciled), slog.String("error", pr.Error))
	}
	return out
}
