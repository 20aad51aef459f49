package aci

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"

	"github.com/pushpool/pushpool/dispatch"
)

// Sweep deletes the container groups pushpool created (tag
// pushpool.io_managed=true) whose container exited, or whose provisioning
// failed, more than SweepAfter ago, and reports how many it deleted. It
// never deletes a group that is pending or running, one whose job set
// keep_container_group, or one pushpool did not create. It looks in the
// default subscription and resource group and in every resource group a
// Start or Find of this Backend used, as the identity that used it.
//
// ARM calls: one list per resource group (and page), one GET per managed
// group older than SweepAfter (the list carries no instance view), one
// DELETE per swept group, whose completion Sweep does not wait for. Errors
// about one resource group or group are joined and do not stop the sweep.
func (b *Backend) Sweep(ctx context.Context) (int, error) {
	cutoff := b.cfg.Now().Add(-b.cfg.SweepAfter)
	removed := 0
	var errs []error
	for _, loc := range b.sweepLocations() {
		n, err := b.sweepIn(ctx, loc, cutoff)
		removed += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// sweepLocations is the default resource group, then the others in name
// order.
func (b *Backend) sweepLocations() []location {
	var locs []location
	seen := ""
	if b.cfg.SubscriptionID != "" && b.cfg.ResourceGroup != "" {
		locs = append(locs, location{Subscription: b.cfg.SubscriptionID, ResourceGroup: b.cfg.ResourceGroup})
		seen = strings.ToLower(b.cfg.SubscriptionID + "/" + b.cfg.ResourceGroup)
	}
	b.mu.Lock()
	var keys []string
	for k := range b.used {
		if k != seen {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		locs = append(locs, b.used[k])
	}
	b.mu.Unlock()
	return locs
}

func (b *Backend) sweepIn(ctx context.Context, loc location, cutoff time.Time) (int, error) {
	rg := groupRef{Subscription: loc.Subscription, ResourceGroup: loc.ResourceGroup}
	who := identity(loc.Principal)
	client, err := b.client(loc.Subscription, loc.Principal)
	if err != nil {
		return 0, err
	}
	removed := 0
	var errs []error
	pager := client.NewListByResourceGroupPager(loc.ResourceGroup, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			errs = append(errs, classify(err, opList, rg, "", "", who))
			break
		}
		for _, listed := range page.Value {
			if listed == nil || listed.Name == nil || !sweepable(*listed, cutoff) {
				continue
			}
			ref := groupRef{Subscription: loc.Subscription, ResourceGroup: loc.ResourceGroup, Name: *listed.Name}
			ok, at, err := b.finishedBefore(ctx, client, ref, cutoff)
			if err != nil {
				errs = append(errs, classify(err, opGet, ref, "", "", who))
				continue
			}
			if !ok {
				continue
			}
			if _, err := client.BeginDelete(ctx, ref.ResourceGroup, ref.Name, nil); err != nil {
				if !isNotFound(err) {
					errs = append(errs, classify(err, opDelete, ref, "", "", who))
				}
				continue
			}
			b.log.InfoContext(ctx, "swept finished container group", slog.String("container_group", ref.ID()), slog.Time("finished_at", at))
			removed++
		}
	}
	return removed, errors.Join(errs...)
}

// sweepable reports, from a listed group's tags, whether Sweep may delete
// it once finished: pushpool created it, its job did not set
// keep_container_group, and it was created before cutoff (a younger one
// cannot have finished before it). A group without a readable created tag
// is never swept.
func sweepable(g armcontainerinstance.ContainerGroup, cutoff time.Time) bool {
	if tag(g, managedTag) != "true" || tag(g, keepTag) == "true" {
		return false
	}
	created, err := time.Parse(time.RFC3339, tag(g, createdTag))
	return err == nil && created.Before(cutoff)
}

// finishedBefore reads a group and reports whether it finished before
// cutoff, and when: its container's finish time, or for a group that
// finished without one (provisioning failed, stopped) its creation.
func (b *Backend) finishedBefore(ctx context.Context, client *armcontainerinstance.ContainerGroupsClient, ref groupRef, cutoff time.Time) (bool, time.Time, error) {
	res, err := client.Get(ctx, ref.ResourceGroup, ref.Name, nil)
	if isNotFound(err) {
		return false, time.Time{}, nil
	}
	if err != nil {
		return false, time.Time{}, err
	}
	g := res.ContainerGroup
	if tag(g, managedTag) != "true" || tag(g, keepTag) == "true" {
		return false, time.Time{}, nil // retagged since the list
	}
	st := statusOf(g)
	if st.State != dispatch.StateExited {
		return false, time.Time{}, nil
	}
	at := st.ExitedAt
	if at.IsZero() {
		at, err = time.Parse(time.RFC3339, tag(g, createdTag))
		if err != nil {
			return false, time.Time{}, nil
		}
	}
	return at.Before(cutoff), at, nil
}

func tag(g armcontainerinstance.ContainerGroup, name string) string {
	if v := g.Tags[name]; v != nil {
		return *v
	}
	return ""
}
