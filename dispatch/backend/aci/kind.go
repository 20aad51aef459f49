package aci

import (
	"cmp"
	"context"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/backends"
	"github.com/pushpool/pushpool/dispatch/pooltype"
	"github.com/pushpool/pushpool/dispatch/prefect"
)

// Environment variables read by Kind's backends, besides the SDK's own
// (AZURE_CLIENT_ID, ...).
const (
	// EnvSubscription, EnvResourceGroup and EnvLocation are the defaults of
	// ACI jobs whose configuration names no subscription, resource group or
	// location; the pool's template defaults come next.
	EnvSubscription  = "AZURE_SUBSCRIPTION_ID"
	EnvResourceGroup = "PUSHPOOL_ACI_RESOURCE_GROUP"
	EnvLocation      = "PUSHPOOL_ACI_LOCATION"
	// EnvSweepAfter is how long after its container exited an ACI container
	// group is deleted by the reconciler's sweep (a Go duration; default 10m).
	EnvSweepAfter = "PUSHPOOL_ACI_SWEEP_AFTER"
)

// Kind offers the Azure Container Instances backend to a build
// (dispatch/backends).
func Kind() backends.Kind {
	return backends.Kind{Family: pooltype.ACI, New: func(_ context.Context, pool prefect.WorkPool, s backends.Settings) (dispatch.Backend, error) {
		sweepAfter, err := s.PositiveDuration(EnvSweepAfter)
		if err != nil {
			return nil, err
		}
		return New(Config{
			SubscriptionID: cmp.Or(s.Env(EnvSubscription), backends.TemplateDefault(pool, "subscription_id")),
			ResourceGroup:  cmp.Or(s.Env(EnvResourceGroup), backends.TemplateDefault(pool, "resource_group_name")),
			Location:       cmp.Or(s.Env(EnvLocation), backends.TemplateDefault(pool, "location")),
			SweepAfter:     sweepAfter, // zero: the backend's default
			Logger:         s.Logger,
		})
	}}
}
