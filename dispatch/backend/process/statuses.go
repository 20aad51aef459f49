package process

import (
	"context"

	"github.com/pushpool/pushpool/dispatch"
)

var _ dispatch.StatusReader = (*Backend)(nil)

// Statuses reports the processes of many infrastructure ids as Status
// reports each. A process's status is read from this host's /proc and the
// backend's state directory, with no call to anyone, so it simply loops;
// ids Status cannot report (another host's processes, malformed ids) are
// left out, and the reconciler asks Status about them, which explains why.
func (b *Backend) Statuses(ctx context.Context, infrastructureIDs []string) (map[string]dispatch.Status, error) {
	out := make(map[string]dispatch.Status, len(infrastructureIDs))
	for _, id := range infrastructureIDs {
		if err := ctx.Err(); err != nil {
			return out, context.Cause(ctx)
		}
		if st, err := b.Status(ctx, id); err == nil {
			out[id] = st
		}
	}
	return out, nil
}
