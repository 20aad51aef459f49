package prefect

import (
	"context"
	"fmt"
	"net/http"
)

// routeGlobalLimitIncrement takes slots of global concurrency limits.
const routeGlobalLimitIncrement route = "POST /v2/concurrency_limits/increment"

// IncrementConcurrencySlots takes slots of every active global concurrency
// limit named, at once, without waiting: acquired is false when one of them
// has no room (the server answers 423 Locked). It returns the limits the
// server found; none when no limit of those names exists (nothing was
// taken, and acquired is true). Limits that are not active are listed but
// take no slot.
//
// A denied request counts against the limits' denied slots, and on the
// server it also restarts the decay of their active slots (it updates the
// rows), so a caller polling a decaying limit should read it first
// (ReadGlobalConcurrencyLimit) and increment only when it has room.
func (c *Client) IncrementConcurrencySlots(ctx context.Context, names []string, slots int) (acquired bool, limits []GlobalConcurrencyLimit, err error) {
	body := map[string]any{"names": names, "slots": slots, "mode": "concurrency"}
	limits, err = post[[]GlobalConcurrencyLimit](ctx, c, routeGlobalLimitIncrement, body)
	switch {
	case hasStatus(err, http.StatusLocked):
		return false, nil, nil
	case err != nil:
		return false, nil, fmt.Errorf("take %d slot(s) of concurrency limits %v: %w", slots, names, err)
	}
	return true, limits, nil
}
