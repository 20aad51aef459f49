// Package aci runs flow runs as Azure Container Instances container groups,
// the way prefect-azure's AzureContainerWorker does (pool type
// azure-container-instance): one group per attempt of a flow run (see
// dispatch.Attempt), built from the job configuration's arm_template, with
// restartPolicy Never.
//
// Names: Prefect's "<slug(flow name)>-<flow_run_id>" followed by
// "-<attempt key>", the slug cut to 17 characters (Prefect's 19, less room
// for the key) so that the name fits ACI's 63. A run that is run again
// (Retry, resume, reschedule) is a new attempt and gets a new group; a
// repeated start of one attempt finds the group its first start created.
// Groups are tagged pushpool.io_managed=true, pushpool.io_attempt=<token>
// and pushpool.io_created=<time> (Azure forbids "/" in tag names).
//
// Start creates a group only if it is absent: it reads the group, and
// creates it with a conditional PUT (If-None-Match: *), so that of the
// dispatchers starting one attempt at the same time one creates it and the
// others are told it exists (412); an existing group is never PUT again,
// which would restart its containers. Within a process, Starts of one
// attempt are serialised.
//
// Unlike the worker, which deploys the arm_template through an ARM
// deployment named prefect-<group>, the backend creates the same container
// group with ContainerGroups.BeginCreateOrUpdate: one API and one permission
// (Microsoft.ContainerInstance/containerGroups/write instead of also
// Microsoft.Resources/deployments/*), and no deployment record per run to
// clean up (a resource group holds at most 800). The cost is that the
// backend evaluates the template's ARM expressions itself; it knows
// parameters('...'), resourceGroup().name/location and
// subscription().subscriptionId, and refuses others with an error.
//
// Location: ARM puts the worker's group in [resourceGroup().location]. The
// backend has no resource-groups client, so it takes the location job
// variable when the pool's template has one, else Config.Location.
//
// Infrastructure ids: Prefect's "<flow_run_id>:<container_group_name>" when
// the group is in Config's default subscription and resource group, where
// Status and Stop look for such ids (the short form cannot be located
// otherwise); the group's full ARM resource id
// (/subscriptions/S/resourceGroups/RG/providers/Microsoft.ContainerInstance/containerGroups/NAME)
// when the job points elsewhere. Status and Stop accept both forms.
//
// Finished groups count against the regional quota until deleted. Prefect's
// worker deletes each after its run; the backend's Stop only runs on
// cancellation, so Sweep (dispatch.Sweeper, called by the reconciler)
// deletes pushpool's groups whose container exited, or whose provisioning
// failed, more than SweepAfter ago.
package aci

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/template"
)

// Config configures a Backend. New fills in the defaults.
type Config struct {
	// Credential authenticates to Azure Resource Manager for jobs without
	// aci_credentials, and for every Status and Stop (an infrastructure id
	// carries no credentials). Nil means azidentity's DefaultAzureCredential.
	Credential azcore.TokenCredential
	// ClientOptions configure the ARM clients: retries (azcore retries 408,
	// 429 and 5xx with backoff, honouring Retry-After), the cloud, and in
	// tests the transport of acifake.
	ClientOptions arm.ClientOptions
	// SubscriptionID and ResourceGroup are where jobs without
	// subscription_id / resource_group_name create their groups, where
	// Status and Stop look for groups named by Prefect's short id, and
	// where Sweep always looks.
	SubscriptionID, ResourceGroup string
	// Location is the Azure region of groups whose template leaves the
	// location to the resource group and whose job has no location variable.
	Location string
	// DefaultImage is the image of jobs without one. Empty means
	// prefecthq/prefect:<Prefect version>-python3.12 (the worker uses its
	// own Python version).
	DefaultImage string
	// ProvisionTimeout is how long Start waits for a new group's
	// provisioning to finish before returning its id; zero means Start
	// returns once ARM accepted the group (Status then reports PENDING until
	// it runs, and a Failed provisioning as an exit). Prefect's worker waits
	// up to task_start_timeout_seconds (240 s).
	ProvisionTimeout time.Duration
	// DeleteTimeout bounds Stop's wait for a deletion. Zero means 30 seconds,
	// as Prefect's worker.
	DeleteTimeout time.Duration
	// PollInterval is how often long-running operations are polled. Zero
	// means 5 seconds (task_watch_poll_interval's default).
	PollInterval time.Duration
	// SweepAfter is how long after its container exited (or its
	// provisioning failed) Sweep deletes a group pushpool created. Zero
	// means 10 minutes. It should exceed the time the reconciler needs to
	// report a run's exit, which it reads from the group.
	SweepAfter time.Duration
	// Now is the clock of the created tag and of Sweep's ages. Nil means
	// time.Now.
	Now func() time.Time
	// Logger receives a line per created, found, stopped, deleted and swept
	// group. Nil discards.
	Logger *slog.Logger
}

// Backend starts flow runs as ACI container groups.
type Backend struct {
	cfg  Config
	log  *slog.Logger
	cred azcore.TokenCredential

	mu      sync.Mutex
	clients map[clientKey]*armcontainerinstance.ContainerGroupsClient
	creds   map[clientSecret]azcore.TokenCredential
	// starting holds a channel per group being started in this process,
	// closed when its Start is done (startLock).
	starting map[string]chan struct{}
	// used are the resource groups Starts created or found groups in, with
	// the identity they did it as, for Sweep; keyed by lower-case
	// subscription/resource group.
	used map[string]location
}

type clientKey struct {
	subscription string
	principal    clientSecret // zero: the backend's credential
}

// location is a resource group Sweep looks in, and the identity it uses.
type location struct {
	Subscription, ResourceGroup string
	Principal                   *clientSecret // nil: the backend's credential
}

var (
	_ dispatch.Backend = (*Backend)(nil)
	_ dispatch.Sweeper = (*Backend)(nil)
)

// New returns a Backend.
func New(cfg Config) (*Backend, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DefaultImage == "" {
		cfg.DefaultImage = "prefecthq/prefect:" + template.PrefectVersion + "-python3.12"
	}
	if cfg.DeleteTimeout == 0 {
		cfg.DeleteTimeout = 30 * time.Second
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 5 * time.Second
	}
	if cfg.SweepAfter == 0 {
		cfg.SweepAfter = 10 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ProvisionTimeout < 0 || cfg.DeleteTimeout < 0 || cfg.PollInterval < 0 || cfg.SweepAfter < 0 {
		return nil, errors.New("aci config: ProvisionTimeout, DeleteTimeout, PollInterval and SweepAfter must not be negative")
	}
	cred := cfg.Credential
	if cred == nil {
		c, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: cfg.ClientOptions.ClientOptions})
		if err != nil {
			return nil, fmt.Errorf("aci: create the default Azure credential (set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, a managed identity, or az login; or pass Config.Credential): %w", err)
		}
		cred = c
	}
	return &Backend{cfg: cfg, log: cfg.Logger.With(slog.String("backend", "aci")), cred: cred,
		clients: map[clientKey]*armcontainerinstance.ContainerGroupsClient{}, creds: map[clientSecret]azcore.TokenCredential{},
		starting: map[string]chan struct{}{}, used: map[string]location{}}, nil
}

// client returns the container groups client of a subscription, for the
// service principal p or, when p is nil, the backend's credential.
func (b *Backend) client(subscription string, p *clientSecret) (*armcontainerinstance.ContainerGroupsClient, error) {
	k := clientKey{subscription: strings.ToLower(subscription)}
	if p != nil {
		k.principal = *p
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.clients[k]; ok {
		return c, nil
	}
	cred := b.cred
	if p != nil {
		if cred = b.creds[*p]; cred == nil {
			c, err := azidentity.NewClientSecretCredential(p.TenantID, p.ClientID, p.Secret,
				&azidentity.ClientSecretCredentialOptions{ClientOptions: b.cfg.ClientOptions.ClientOptions})
			if err != nil {
				return nil, fmt.Errorf("create the client secret credential of service principal %s in tenant %s (aci_credentials): %w", p.ClientID, p.TenantID, err)
			}
			b.creds[*p], cred = c, c
		}
	}
	opts := b.cfg.ClientOptions
	c, err := armcontainerinstance.NewContainerGroupsClient(subscription, cred, &opts)
	if err != nil {
		return nil, fmt.Errorf("create the container groups client of subscription %s: %w", subscription, err)
	}
	b.clients[k] = c
	return c, nil
}

// attemptGroup is where job.Attempt's group lives, and the id Start and
// Find return for it.
type attemptGroup struct {
	spec   spec
	ref    groupRef
	id     string
	client *armcontainerinstance.ContainerGroupsClient
	who    string // the identity, for messages
}

func (b *Backend) attemptGroup(job dispatch.Job) (attemptGroup, error) {
	if job.Attempt.IsZero() {
		return attemptGroup{}, fmt.Errorf("flow run %s: the job names no attempt (a bug in the caller)", job.FlowRunID)
	}
	s, err := parseSpec(job.Configuration, b.cfg)
	if err != nil {
		return attemptGroup{}, fmt.Errorf("flow run %s: %w", job.FlowRunID, err)
	}
	ref := groupRef{Subscription: s.Subscription, ResourceGroup: s.ResourceGroup, Name: groupName(job.FlowName, job.FlowRunID, job.Attempt.Key())}
	client, err := b.client(s.Subscription, s.Credentials)
	if err != nil {
		return attemptGroup{}, fmt.Errorf("flow run %s: %w", job.FlowRunID, err)
	}
	return attemptGroup{spec: s, ref: ref, id: infrastructureID(job.FlowRunID, ref, b.cfg.SubscriptionID, b.cfg.ResourceGroup),
		client: client, who: identity(s.Credentials)}, nil
}

// Start creates the container group of job.Attempt unless it exists, and
// returns its id. The name is the attempt's, so a repeated Start finds the
// group the first created, and an earlier attempt's group never counts.
//
// ARM calls: a GET of the group; when it is absent, a conditional PUT
// (If-None-Match: *) that ARM refuses with 412 when another dispatcher
// created the group meanwhile (then Start returns its id), and, with
// ProvisionTimeout, the polls of the creation. An existing group is never
// PUT again: ACI would restart its containers. Starts of one attempt in
// this process wait for each other.
func (b *Backend) Start(ctx context.Context, job dispatch.Job) (string, error) {
	g, err := b.attemptGroup(job)
	if err != nil {
		return "", err
	}
	ref, s := g.ref, g.spec
	log := b.log.With(slog.String("flow_run_id", job.FlowRunID), slog.String("attempt", job.Attempt.Key()), slog.String("container_group", ref.ID()))
	unlock, err := b.startLock(ctx, strings.ToLower(ref.ID()))
	if err != nil {
		return "", classify(err, opCreate, ref, job.FlowRunID, s.Image, g.who)
	}
	defer unlock()

	_, err = g.client.Get(ctx, ref.ResourceGroup, ref.Name, nil)
	switch {
	case err == nil:
		b.remember(s)
		log.InfoContext(ctx, "container group already exists; not creating it again")
		return g.id, nil
	case !isNotFound(err):
		return "", classify(err, opGet, ref, job.FlowRunID, s.Image, g.who)
	}

	group, err := buildGroup(s, ref.Name, map[string]string{
		managedTag: "true",
		attemptTag: job.Attempt.Token(),
		createdTag: b.cfg.Now().UTC().Format(time.RFC3339),
	})
	if err != nil {
		return "", fmt.Errorf("flow run %s: build %s from the job configuration: %w", job.FlowRunID, ref, err)
	}
	b.remember(s) // before the PUT: a Start cut off after it must not leave a group Sweep never sees
	poller, err := g.client.BeginCreateOrUpdate(ifAbsent(ctx), ref.ResourceGroup, ref.Name, group, nil)
	if err != nil {
		if exists, ferr := b.createdElsewhere(ctx, g, err); exists {
			log.InfoContext(ctx, "container group was created by a concurrent start; not creating it again")
			return g.id, nil
		} else if ferr != nil {
			err = ferr
		}
		return "", classify(err, opCreate, ref, job.FlowRunID, s.Image, g.who)
	}
	log.InfoContext(ctx, "container group created", slog.String("image", s.Image))
	if b.cfg.ProvisionTimeout > 0 {
		wctx, cancel := context.WithTimeout(ctx, b.cfg.ProvisionTimeout)
		defer cancel()
		if err := b.wait(wctx, poller.Done, poller.Poll); err != nil {
			if wctx.Err() != nil && ctx.Err() == nil {
				log.WarnContext(ctx, "container group still provisioning; its status will tell", slog.Duration("waited", b.cfg.ProvisionTimeout))
				return g.id, nil
			}
			return "", classify(err, opCreate, ref, job.FlowRunID, s.Image, g.who)
		}
		res, err := poller.Result(ctx)
		if err != nil {
			return "", classify(err, opCreate, ref, job.FlowRunID, s.Image, g.who)
		}
		if p := res.Properties; p != nil && p.ProvisioningState != nil && strings.EqualFold(*p.ProvisioningState, "Failed") {
			return "", fmt.Errorf("flow run %s: provisioning of %s failed: %s; look at the group's events (az container show --ids %s)", job.FlowRunID, ref, groupReason(res.ContainerGroup), ref.ID())
		}
	}
	return g.id, nil
}

// ifAbsent makes the requests of ctx conditional on the resource not
// existing: ARM answers a PUT with 412 Precondition Failed instead of
// updating an existing resource.
func ifAbsent(ctx context.Context) context.Context {
	return policy.WithHTTPHeader(ctx, http.Header{"If-None-Match": {"*"}})
}

// createdElsewhere reports whether a failed conditional PUT failed because
// the group exists: 412 says so; a 409 that is not a quota (a concurrent
// operation on the group) is checked with a GET. err is the GET's error,
// when it failed otherwise than with 404.
func (b *Backend) createdElsewhere(ctx context.Context, g attemptGroup, putErr error) (exists bool, err error) {
	var re *azcore.ResponseError
	if !errors.As(putErr, &re) {
		return false, nil
	}
	switch {
	case re.StatusCode == http.StatusPreconditionFailed:
		return true, nil
	case re.StatusCode == http.StatusConflict && !isQuota(re.ErrorCode):
		_, err := g.client.Get(ctx, g.ref.ResourceGroup, g.ref.Name, nil)
		if err == nil {
			return true, nil
		}
		if isNotFound(err) {
			return false, nil
		}
		return false, err
	}
	return false, nil
}

// startLock serialises the Starts of one group in this process; it gives up
// when ctx ends.
func (b *Backend) startLock(ctx context.Context, key string) (unlock func(), err error) {
	for {
		b.mu.Lock()
		busy, ok := b.starting[key]
		if !ok {
			done := make(chan struct{})
			b.starting[key] = done
			b.mu.Unlock()
			return func() {
				b.mu.Lock()
				delete(b.starting, key)
				b.mu.Unlock()
				close(done)
			}, nil
		}
		b.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// remember records the resource group of a job for Sweep.
func (b *Backend) remember(s spec) {
	k := strings.ToLower(s.Subscription + "/" + s.ResourceGroup)
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.used[k]; !ok {
		b.used[k] = location{Subscription: s.Subscription, ResourceGroup: s.ResourceGroup, Principal: s.Credentials}
	}
}

// Find returns the id of job.Attempt's container group when it exists: one
// GET of the group by the attempt's name.
func (b *Backend) Find(ctx context.Context, job dispatch.Job) (string, bool, error) {
	g, err := b.attemptGroup(job)
	if err != nil {
		return "", false, err
	}
	_, err = g.client.Get(ctx, g.ref.ResourceGroup, g.ref.Name, nil)
	switch {
	case err == nil:
		b.remember(g.spec)
		return g.id, true, nil
	case isNotFound(err):
		return "", false, nil
	}
	return "", false, classify(err, opGet, g.ref, job.FlowRunID, g.spec.Image, g.who)
}

// wait polls a long-running operation every PollInterval until done.
func (b *Backend) wait(ctx context.Context, done func() bool, poll func(context.Context) (*http.Response, error)) error {
	for !done() {
		if _, err := poll(ctx); err != nil {
			return err
		}
		if done() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(b.cfg.PollInterval):
		}
	}
	return nil
}

// Status reads the group and its first container's instance view.
func (b *Backend) Status(ctx context.Context, infrastructureID string) (dispatch.Status, error) {
	ref, err := parseInfrastructureID(infrastructureID, b.cfg.SubscriptionID, b.cfg.ResourceGroup)
	if err != nil {
		return dispatch.Status{}, err
	}
	client, err := b.client(ref.Subscription, nil)
	if err != nil {
		return dispatch.Status{}, err
	}
	res, err := client.Get(ctx, ref.ResourceGroup, ref.Name, nil)
	if isNotFound(err) {
		return dispatch.Status{State: dispatch.StateNotFound}, nil
	}
	if err != nil {
		return dispatch.Status{}, classify(err, opGet, ref, flowRunOf(infrastructureID), "", identity(nil))
	}
	st := statusOf(res.ContainerGroup)
	st.Attempt = attemptOf(res.ContainerGroup)
	return st, nil
}

// attemptOf is the key of the attempt a group was started for: from its
// attempt tag (a Token, or a bare key), else from its name; "" for groups
// that say neither.
func attemptOf(g armcontainerinstance.ContainerGroup) string {
	if v := g.Tags[attemptTag]; v != nil {
		if _, key, ok := dispatch.ParseToken(*v); ok {
			return key
		}
		if isKey(*v) {
			return *v
		}
	}
	if g.Name != nil {
		if key, ok := attemptInName(*g.Name); ok {
			return key
		}
	}
	return ""
}

func isKey(s string) bool {
	if len(s) != dispatch.KeyLen {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// statusOf maps a container group to a Status: provisioning Failed is an
// exit with code -1; otherwise the first container decides (Terminated:
// exited with its exit code, detail status and finish time; Running:
// running); a Stopped group whose container did not exit reports -1; the
// rest (Waiting, no instance view yet) is pending.
func statusOf(g armcontainerinstance.ContainerGroup) dispatch.Status {
	p := g.Properties
	if p == nil {
		return dispatch.Status{State: dispatch.StatePending}
	}
	var cs *armcontainerinstance.ContainerState
	if len(p.Containers) > 0 && p.Containers[0].Properties != nil && p.Containers[0].Properties.InstanceView != nil {
		cs = p.Containers[0].Properties.InstanceView.CurrentState
	}
	if cs != nil && strings.EqualFold(deref(cs.State), "Terminated") {
		st := dispatch.Status{State: dispatch.StateExited, ExitCode: -1, Reason: deref(cs.DetailStatus)}
		if cs.ExitCode != nil {
			st.ExitCode = int(*cs.ExitCode)
		}
		if cs.FinishTime != nil {
			st.ExitedAt = *cs.FinishTime
		}
		return st
	}
	if strings.EqualFold(deref(p.ProvisioningState), "Failed") {
		return dispatch.Status{State: dispatch.StateExited, ExitCode: -1, Reason: "container group provisioning failed: " + groupReason(g)}
	}
	if p.InstanceView != nil && strings.EqualFold(deref(p.InstanceView.State), "Stopped") {
		return dispatch.Status{State: dispatch.StateExited, ExitCode: -1, Reason: "container group was stopped before its container exited"}
	}
	if cs != nil && strings.EqualFold(deref(cs.State), "Running") {
		return dispatch.Status{State: dispatch.StateRunning}
	}
	return dispatch.Status{State: dispatch.StatePending, Reason: reasonOf(cs)}
}

func reasonOf(cs *armcontainerinstance.ContainerState) string {
	if cs == nil {
		return ""
	}
	return deref(cs.DetailStatus)
}

// groupReason is the best explanation a group gives of a failure: its
// container's detail status, else its last event.
func groupReason(g armcontainerinstance.ContainerGroup) string {
	p := g.Properties
	if p == nil {
		return "no details"
	}
	if len(p.Containers) > 0 && p.Containers[0].Properties != nil && p.Containers[0].Properties.InstanceView != nil {
		iv := p.Containers[0].Properties.InstanceView
		if r := reasonOf(iv.CurrentState); r != "" {
			return r
		}
		if n := len(iv.Events); n > 0 && iv.Events[n-1] != nil {
			return deref(iv.Events[n-1].Message)
		}
	}
	if p.InstanceView != nil {
		if n := len(p.InstanceView.Events); n > 0 && p.InstanceView.Events[n-1] != nil {
			return deref(p.InstanceView.Events[n-1].Message)
		}
	}
	return "no details"
}

// Stop deletes the group and waits up to DeleteTimeout for the deletion, or
// only stops it when its job set keep_container_group (recorded as a tag
// at Start). A group that does not exist is stopped.
func (b *Backend) Stop(ctx context.Context, infrastructureID string) error {
	ref, err := parseInfrastructureID(infrastructureID, b.cfg.SubscriptionID, b.cfg.ResourceGroup)
	if err != nil {
		return err
	}
	client, err := b.client(ref.Subscription, nil)
	if err != nil {
		return err
	}
	run, who := flowRunOf(infrastructureID), identity(nil)
	res, err := client.Get(ctx, ref.ResourceGroup, ref.Name, nil)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return classify(err, opGet, ref, run, "", who)
	}
	log := b.log.With(slog.String("container_group", ref.ID()))
	if v := res.Tags[keepTag]; v != nil && *v == "true" {
		if _, err := client.Stop(ctx, ref.ResourceGroup, ref.Name, nil); err != nil && !isNotFound(err) {
			return classify(err, opStop, ref, run, "", who)
		}
		log.InfoContext(ctx, "container group stopped (keep_container_group)")
		return nil
	}
	poller, err := client.BeginDelete(ctx, ref.ResourceGroup, ref.Name, nil)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return classify(err, opDelete, ref, run, "", who)
	}
	dctx, cancel := context.WithTimeout(ctx, b.cfg.DeleteTimeout)
	defer cancel()
	if err := b.wait(dctx, poller.Done, poller.Poll); err != nil && !isNotFound(err) {
		if dctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("%w: %s was still being deleted after %s; check it with `az container show --ids %s`", dispatch.ErrRetryable, ref, b.cfg.DeleteTimeout, ref.ID())
		}
		return classify(err, opDelete, ref, run, "", who)
	}
	log.InfoContext(ctx, "container group deleted")
	return nil
}

// flowRunOf is the flow run id of a short infrastructure id, "" otherwise.
func flowRunOf(id string) string {
	if run, _, ok := strings.Cut(id, ":"); ok && !strings.HasPrefix(id, "/") {
		return run
	}
	return ""
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
