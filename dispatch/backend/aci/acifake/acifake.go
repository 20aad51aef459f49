// Package acifake is an in-memory Azure Container Instances control plane for
// tests: container groups in any number of subscriptions and resource
// groups, served through the Azure SDK's own fake server
// (armcontainerinstance/v2/fake.ContainerGroupsServer and azcore/fake), so
// the real armcontainerinstance client, its pipeline and its retry policy run
// unchanged against it. Tests steer it with Go methods: make a container
// exit, make a group vanish, inject cloud errors, read the requests it got.
//
// Beyond the SDK's fake it honours ARM's conditional create: a PUT with
// If-None-Match: * of a group that exists is answered 412
// PreconditionFailed and changes nothing, atomically with the creation of
// the group; and every PUT reaches the control plane (the SDK's fake would
// take a PUT of a group whose earlier creation was never polled to its end
// for a poll of that creation).
package acifake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2/fake"
)

// Op is a ContainerGroupsClient operation, named as the SDK names it in the
// request context (runtime.CtxAPINameKey).
type Op string

// The operations the fake serves.
const (
	OpCreate              Op = "ContainerGroupsClient.BeginCreateOrUpdate"
	OpGet                 Op = "ContainerGroupsClient.Get"
	OpDelete              Op = "ContainerGroupsClient.BeginDelete"
	OpStop                Op = "ContainerGroupsClient.Stop"
	OpList                Op = "ContainerGroupsClient.NewListPager"
	OpListByResourceGroup Op = "ContainerGroupsClient.NewListByResourceGroupPager"
)

// initialMethod is the HTTP method of an operation's first request; the
// polling requests of long-running operations are GETs and are never
// faulted or counted.
var initialMethod = map[Op]string{
	OpCreate: http.MethodPut, OpGet: http.MethodGet, OpDelete: http.MethodDelete,
	OpStop: http.MethodPost, OpList: http.MethodGet, OpListByResourceGroup: http.MethodGet,
}

// Fault is a cloud error the fake can answer an operation with, as ARM
// sends it: status, x-ms-error-code and an {"error":{code,message}} body.
type Fault string

// The faults the fake can inject.
const (
	// Throttled is 429 TooManyRequests with a Retry-After header; azcore's
	// retry policy retries it.
	Throttled Fault = "TooManyRequests"
	// ServiceUnavailable is 503, as ARM answers during an outage (#22077).
	ServiceUnavailable Fault = "ServiceUnavailable"
	// AuthorizationFailed is 403 naming the action the caller may not perform.
	AuthorizationFailed Fault = "AuthorizationFailed"
	// InaccessibleImage is 400: the image cannot be pulled.
	InaccessibleImage Fault = "InaccessibleImage"
	// QuotaReached is 409 ContainerGroupQuotaReached: the subscription's
	// container group quota in the region is exhausted.
	QuotaReached Fault = "ContainerGroupQuotaReached"
	// Conflict is 409 AnotherOperationInProgress, as ARM answers a write
	// while another operation on the resource runs.
	Conflict Fault = "AnotherOperationInProgress"
	// NotFound is 404 ResourceNotFound whether or not the group exists, as
	// a read that has not caught up with a concurrent creation answers.
	NotFound Fault = "ResourceNotFound"
)

// Request is an operation's first request as the fake received it.
type Request struct {
	Op     Op
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// CallerObjectID is the object id the fake names as the caller in
// AuthorizationFailed messages.
const CallerObjectID = "5c2d7a3e-1f4b-4e8a-9d6c-0b7e2f1a3c9d"

// Azure is an in-memory Azure Container Instances control plane. The zero
// value is not usable; call New.
type Azure struct {
	// Location is the region of groups created without one.
	Location string
	// RetryAfter is the Retry-After the Throttled fault sends.
	RetryAfter time.Duration
	// PageSize is how many groups one list page holds.
	PageSize int

	inner *fake.ContainerGroupsServerTransport

	mu     sync.Mutex
	groups map[key]*armcontainerinstance.ContainerGroup
	faults map[Op]*injected
	calls  map[Op]int
	// requests are the first requests of every operation, in order.
	requests []Request
	// creates holds a fake transport per creation whose polling has not
	// ended, by lower-case group path: each PUT gets its own, so that no
	// PUT is taken for a poll of an earlier creation.
	creates map[string]*fake.ContainerGroupsServerTransport
	// restarts counts CreateOrUpdate calls on groups that existed: real ACI
	// restarts the containers of such a group.
	restarts int

	// listMu serialises list calls: the SDK's list fakes receive no context,
	// so the subscription travels through listSub.
	listMu  sync.Mutex
	listSub string
}

type key struct{ sub, rg, name string }

func keyOf(sub, rg, name string) key {
	return key{strings.ToLower(sub), strings.ToLower(rg), strings.ToLower(name)}
}

type injected struct {
	fault Fault
	times int // < 0: forever
}

type (
	subscriptionKey struct{}
	ifNoneMatchKey  struct{}
)

// New returns an empty control plane in region westeurope.
func New() *Azure {
	a := &Azure{
		Location:   "westeurope",
		RetryAfter: time.Second,
		PageSize:   100,
		groups:     map[key]*armcontainerinstance.ContainerGroup{},
		faults:     map[Op]*injected{},
		calls:      map[Op]int{},
		creates:    map[string]*fake.ContainerGroupsServerTransport{},
	}
	a.inner = fake.NewContainerGroupsServerTransport(&fake.ContainerGroupsServer{
		BeginCreateOrUpdate:         a.create,
		Get:                         a.get,
		BeginDelete:                 a.delete,
		Stop:                        a.stop,
		NewListPager:                a.list,
		NewListByResourceGroupPager: a.listByResourceGroup,
	})
	return a
}

// ClientOptions returns client options that route the real
// armcontainerinstance client to a, with a fast retry policy for tests.
func (a *Azure) ClientOptions() arm.ClientOptions {
	return arm.ClientOptions{ClientOptions: policy.ClientOptions{
		Transport: a,
		Retry:     policy.RetryOptions{MaxRetries: 3, RetryDelay: 5 * time.Millisecond, MaxRetryDelay: 2 * time.Second},
	}}
}

// Credential returns a fake token credential the clients accept.
func (a *Azure) Credential() azcore.TokenCredential { return &azfake.TokenCredential{} }

var pathRE = regexp.MustCompile(`^/subscriptions/([^/]+)(?:/resourceGroups/([^/]+))?(?:/providers/Microsoft\.ContainerInstance/containerGroups/([^/]+))?`)

// pollSuffix is what the SDK's fake poller appends to an operation's path.
const pollSuffix = "/get/fake/status"

// Do implements policy.Transporter: it records first requests, applies
// injected faults, then hands the request to the SDK's fake server with the
// subscription (and an If-None-Match: * condition) in its context.
func (a *Azure) Do(req *http.Request) (*http.Response, error) {
	op, _ := req.Context().Value(runtime.CtxAPINameKey{}).(string)
	m := pathRE.FindStringSubmatch(req.URL.Path)
	if m == nil {
		return nil, fmt.Errorf("acifake: cannot route %s %s", req.Method, req.URL.Path)
	}
	sub, rg, name := m[1], m[2], m[3]
	if initialMethod[Op(op)] == req.Method && !strings.Contains(req.URL.Path, "/fake/") {
		var body []byte
		if req.Body != nil {
			data, err := io.ReadAll(req.Body)
			if err != nil {
				return nil, fmt.Errorf("acifake: read the %s request body: %w", op, err)
			}
			req.Body, body = io.NopCloser(bytes.NewReader(data)), data
		}
		a.mu.Lock()
		a.requests = append(a.requests, Request{Op: Op(op), Method: req.Method, Path: req.URL.Path, Header: req.Header.Clone(), Body: body})
		a.calls[Op(op)]++
		f := a.faults[Op(op)]
		var fault Fault
		if f != nil && f.times != 0 {
			fault = f.fault
			if f.times > 0 {
				f.times--
			}
		}
		a.mu.Unlock()
		if fault != "" {
			return a.faultResponse(req, Op(op), fault, sub, rg, name)
		}
	}
	ctx := context.WithValue(req.Context(), subscriptionKey{}, sub)
	if req.Header.Get("If-None-Match") == "*" {
		ctx = context.WithValue(ctx, ifNoneMatchKey{}, true)
	}
	req = req.WithContext(ctx)
	switch Op(op) {
	case OpCreate:
		return a.doCreate(req)
	case OpList, OpListByResourceGroup:
		a.listMu.Lock()
		defer a.listMu.Unlock()
		a.listSub = sub
	}
	return a.inner.Do(req)
}

// doCreate serves a creation's PUT with a transport of its own, and its
// polls with that transport until the creation ends. A PUT refused (412,
// a fault) leaves the polls of an earlier creation of the group alone.
func (a *Azure) doCreate(req *http.Request) (*http.Response, error) {
	path := strings.ToLower(strings.TrimSuffix(req.URL.Path, pollSuffix))
	var t *fake.ContainerGroupsServerTransport
	if req.Method == http.MethodPut {
		t = fake.NewContainerGroupsServerTransport(&fake.ContainerGroupsServer{BeginCreateOrUpdate: a.create})
	} else {
		a.mu.Lock()
		t = a.creates[path]
		a.mu.Unlock()
		if t == nil {
			return nil, fmt.Errorf("acifake: no creation of %s to poll", req.URL.Path)
		}
	}
	resp, err := t.Do(req)
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case err == nil && inProgress(resp):
		a.creates[path] = t
	case a.creates[path] == t:
		delete(a.creates, path)
	}
	return resp, err
}

// inProgress reports whether a fake LRO response leaves the operation
// running.
func inProgress(resp *http.Response) bool {
	switch strings.ToLower(resp.Header.Get("Fake-Poller-Status")) {
	case "", "succeeded", "failed", "canceled", "cancelled":
		return false
	}
	return true
}

// Inject makes the next `times` calls of op answer with f (times < 0: every
// call until ClearFaults).
func (a *Azure) Inject(op Op, f Fault, times int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.faults[op] = &injected{fault: f, times: times}
}

// ClearFaults removes every injected fault.
func (a *Azure) ClearFaults() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.faults = map[Op]*injected{}
}

// Calls reports how many requests op received, faulted ones included.
func (a *Azure) Calls(op Op) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[op]
}

// Requests returns the first requests of op (every operation when op is
// empty) the fake received, oldest first, with their headers and bodies.
func (a *Azure) Requests(op Op) []Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Request
	for _, r := range a.requests {
		if op == "" || r.Op == op {
			out = append(out, r)
		}
	}
	return out
}

// Groups returns copies of every stored group, in every subscription,
// secure values included.
func (a *Azure) Groups() []armcontainerinstance.ContainerGroup {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]armcontainerinstance.ContainerGroup, 0, len(a.groups))
	for _, g := range a.groups {
		out = append(out, clone(g))
	}
	return out
}

// Restarts reports how many CreateOrUpdate calls hit an existing group
// (which real ACI answers by restarting its containers).
func (a *Azure) Restarts() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.restarts
}

// Group returns a copy of a stored group, secure values included.
func (a *Azure) Group(sub, rg, name string) (armcontainerinstance.ContainerGroup, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g, ok := a.groups[keyOf(sub, rg, name)]
	if !ok {
		return armcontainerinstance.ContainerGroup{}, false
	}
	return clone(g), true
}

// Update changes a stored group in place, for states the other controls do
// not cover (a container still Waiting, a Failed provisioning).
func (a *Azure) Update(sub, rg, name string, fn func(*armcontainerinstance.ContainerGroup)) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	g, ok := a.groups[keyOf(sub, rg, name)]
	if !ok {
		return fmt.Errorf("acifake: no container group %s in resource group %s of subscription %s", name, rg, sub)
	}
	fn(g)
	return nil
}

// Terminate makes the group's first container exit with exitCode and the
// detail status ACI reports with it ("Completed", "Error", "OOMKilled").
func (a *Azure) Terminate(sub, rg, name string, exitCode int, detail string) error {
	return a.Update(sub, rg, name, func(g *armcontainerinstance.ContainerGroup) {
		c := g.Properties.Containers[0]
		now := time.Now().UTC()
		prev := c.Properties.InstanceView.CurrentState
		c.Properties.InstanceView.PreviousState = prev
		c.Properties.InstanceView.CurrentState = &armcontainerinstance.ContainerState{
			State: to.Ptr("Terminated"), ExitCode: to.Ptr(int32(exitCode)), DetailStatus: to.Ptr(detail),
			StartTime: prev.StartTime, FinishTime: &now,
		}
		g.Properties.InstanceView.State = to.Ptr(groupStateAfterExit(exitCode))
	})
}

func groupStateAfterExit(code int) string {
	if code == 0 {
		return "Succeeded"
	}
	return "Failed"
}

// Vanish removes a group behind its owner's back; it reports whether the
// group existed.
func (a *Azure) Vanish(sub, rg, name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := keyOf(sub, rg, name)
	_, ok := a.groups[k]
	delete(a.groups, k)
	return ok
}

// ID is the ARM resource id of a container group.
func ID(sub, rg, name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerInstance/containerGroups/%s", sub, rg, name)
}

func subscriptionOf(ctx context.Context) string {
	s, _ := ctx.Value(subscriptionKey{}).(string)
	return s
}

var groupNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func (a *Azure) create(ctx context.Context, rg, name string, body armcontainerinstance.ContainerGroup, _ *armcontainerinstance.ContainerGroupsClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armcontainerinstance.ContainerGroupsClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
	if code := validate(name, body); code != "" {
		errResp.SetResponseError(http.StatusBadRequest, code)
		return resp, errResp
	}
	sub := subscriptionOf(ctx)
	now := time.Now().UTC()
	g := clone(&body)
	g.ID, g.Name, g.Type = to.Ptr(ID(sub, rg, name)), to.Ptr(name), to.Ptr("Microsoft.ContainerInstance/containerGroups")
	if g.Location == nil || *g.Location == "" {
		g.Location = to.Ptr(a.Location)
	}
	g.Properties.ProvisioningState = to.Ptr("Succeeded")
	g.Properties.InstanceView = &armcontainerinstance.ContainerGroupPropertiesInstanceView{State: to.Ptr("Running")}
	for _, c := range g.Properties.Containers {
		c.Properties.InstanceView = &armcontainerinstance.ContainerPropertiesInstanceView{
			RestartCount: to.Ptr(int32(0)),
			CurrentState: &armcontainerinstance.ContainerState{State: to.Ptr("Running"), DetailStatus: to.Ptr(""), StartTime: &now},
		}
	}
	a.mu.Lock()
	k := keyOf(sub, rg, name)
	if _, ok := a.groups[k]; ok {
		if onlyIfAbsent, _ := ctx.Value(ifNoneMatchKey{}).(bool); onlyIfAbsent {
			a.mu.Unlock()
			errResp.SetResponseError(http.StatusPreconditionFailed, "PreconditionFailed")
			return resp, errResp
		}
		a.restarts++
	}
	a.groups[k] = &g
	out := redact(g)
	a.mu.Unlock()

	resp.AddNonTerminalResponse(http.StatusCreated, nil)
	resp.SetTerminalResponse(http.StatusOK, armcontainerinstance.ContainerGroupsClientCreateOrUpdateResponse{ContainerGroup: out}, nil)
	return resp, errResp
}

// validate applies a few of ACI's request checks and returns ARM's error
// code, or "".
func validate(name string, g armcontainerinstance.ContainerGroup) string {
	if !groupNameRE.MatchString(name) {
		return "InvalidContainerGroupName"
	}
	if g.Properties == nil || len(g.Properties.Containers) == 0 {
		return "NoContainersInContainerGroup"
	}
	for _, c := range g.Properties.Containers {
		if c.Name == nil || !groupNameRE.MatchString(*c.Name) {
			return "InvalidContainerName"
		}
		if c.Properties == nil || c.Properties.Image == nil || *c.Properties.Image == "" {
			return "InvalidImageName"
		}
		if c.Properties.Resources == nil || c.Properties.Resources.Requests == nil ||
			c.Properties.Resources.Requests.CPU == nil || c.Properties.Resources.Requests.MemoryInGB == nil {
			return "InvalidContainerResources"
		}
		for _, e := range c.Properties.EnvironmentVariables {
			if e.Name == nil || (e.Value != nil && e.SecureValue != nil) {
				return "InvalidEnvironmentVariable"
			}
		}
	}
	if g.Properties.OSType == nil {
		return "InvalidOsType"
	}
	return ""
}

func (a *Azure) get(ctx context.Context, rg, name string, _ *armcontainerinstance.ContainerGroupsClientGetOptions) (resp azfake.Responder[armcontainerinstance.ContainerGroupsClientGetResponse], errResp azfake.ErrorResponder) {
	a.mu.Lock()
	g, ok := a.groups[keyOf(subscriptionOf(ctx), rg, name)]
	var out armcontainerinstance.ContainerGroup
	if ok {
		out = redact(*g)
	}
	a.mu.Unlock()
	if !ok {
		errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
		return resp, errResp
	}
	resp.SetResponse(http.StatusOK, armcontainerinstance.ContainerGroupsClientGetResponse{ContainerGroup: out}, nil)
	return resp, errResp
}

func (a *Azure) delete(ctx context.Context, rg, name string, _ *armcontainerinstance.ContainerGroupsClientBeginDeleteOptions) (resp azfake.PollerResponder[armcontainerinstance.ContainerGroupsClientDeleteResponse], errResp azfake.ErrorResponder) {
	a.mu.Lock()
	k := keyOf(subscriptionOf(ctx), rg, name)
	g, ok := a.groups[k]
	var out armcontainerinstance.ContainerGroup
	if ok {
		out = redact(*g)
		delete(a.groups, k)
	}
	a.mu.Unlock()
	if !ok {
		// ARM answers a DELETE of a missing resource with 204 No Content.
		resp.SetTerminalResponse(http.StatusNoContent, armcontainerinstance.ContainerGroupsClientDeleteResponse{}, nil)
		return resp, errResp
	}
	resp.AddNonTerminalResponse(http.StatusAccepted, nil)
	resp.SetTerminalResponse(http.StatusOK, armcontainerinstance.ContainerGroupsClientDeleteResponse{ContainerGroup: out}, nil)
	return resp, errResp
}

func (a *Azure) stop(ctx context.Context, rg, name string, _ *armcontainerinstance.ContainerGroupsClientStopOptions) (resp azfake.Responder[armcontainerinstance.ContainerGroupsClientStopResponse], errResp azfake.ErrorResponder) {
	a.mu.Lock()
	g, ok := a.groups[keyOf(subscriptionOf(ctx), rg, name)]
	if ok {
		// ACI deallocates a stopped group: containers that had not exited
		// lose their instance view and the group reports Stopped.
		g.Properties.InstanceView.State = to.Ptr("Stopped")
		for _, c := range g.Properties.Containers {
			if iv := c.Properties.InstanceView; iv != nil && (iv.CurrentState == nil || iv.CurrentState.State == nil || *iv.CurrentState.State != "Terminated") {
				c.Properties.InstanceView = nil
			}
		}
	}
	a.mu.Unlock()
	if !ok {
		errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
		return resp, errResp
	}
	resp.SetResponse(http.StatusNoContent, armcontainerinstance.ContainerGroupsClientStopResponse{}, nil)
	return resp, errResp
}

func (a *Azure) list(*armcontainerinstance.ContainerGroupsClientListOptions) (resp azfake.PagerResponder[armcontainerinstance.ContainerGroupsClientListResponse]) {
	for _, page := range a.pages(a.listSub, "") {
		resp.AddPage(http.StatusOK, armcontainerinstance.ContainerGroupsClientListResponse{ContainerGroupListResult: armcontainerinstance.ContainerGroupListResult{Value: page}}, nil)
	}
	return resp
}

func (a *Azure) listByResourceGroup(rg string, _ *armcontainerinstance.ContainerGroupsClientListByResourceGroupOptions) (resp azfake.PagerResponder[armcontainerinstance.ContainerGroupsClientListByResourceGroupResponse]) {
	for _, page := range a.pages(a.listSub, rg) {
		resp.AddPage(http.StatusOK, armcontainerinstance.ContainerGroupsClientListByResourceGroupResponse{ContainerGroupListResult: armcontainerinstance.ContainerGroupListResult{Value: page}}, nil)
	}
	return resp
}

// pages splits the groups of sub (and rg, when not empty) into pages; there
// is always at least one, possibly empty, page.
func (a *Azure) pages(sub, rg string) [][]*armcontainerinstance.ContainerGroup {
	a.mu.Lock()
	defer a.mu.Unlock()
	var all []*armcontainerinstance.ContainerGroup
	for k, g := range a.groups {
		if k.sub == strings.ToLower(sub) && (rg == "" || k.rg == strings.ToLower(rg)) {
			out := redact(*g)
			out.Properties.InstanceView = nil // list results carry no instance view
			for _, c := range out.Properties.Containers {
				c.Properties.InstanceView = nil
			}
			all = append(all, &out)
		}
	}
	size := max(a.PageSize, 1)
	pages := [][]*armcontainerinstance.ContainerGroup{{}}
	for i, g := range all {
		if i > 0 && i%size == 0 {
			pages = append(pages, nil)
		}
		pages[len(pages)-1] = append(pages[len(pages)-1], g)
	}
	return pages
}

// faultResponse builds ARM's answer for fault f to a request for op.
func (a *Azure) faultResponse(req *http.Request, op Op, f Fault, sub, rg, name string) (*http.Response, error) {
	scope := ID(sub, rg, name)
	header := http.Header{"Content-Type": {"application/json; charset=utf-8"}, "X-Ms-Error-Code": {string(f)}}
	var status int
	var msg string
	switch f {
	case Throttled:
		status = http.StatusTooManyRequests
		secs := max(int((a.RetryAfter+time.Second-1)/time.Second), 1)
		header.Set("Retry-After", strconv.Itoa(secs))
		msg = fmt.Sprintf("Number of requests for %s exceeded the limit. Please try again after %d seconds.", op, secs)
	case ServiceUnavailable:
		status = http.StatusServiceUnavailable
		msg = "The service is temporarily unavailable. Please try again later."
	case AuthorizationFailed:
		status = http.StatusForbidden
		msg = fmt.Sprintf("The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
			CallerObjectID, CallerObjectID, action(op), scope)
	case InaccessibleImage:
		status = http.StatusBadRequest
		msg = fmt.Sprintf("The image '%s' in container group '%s' is not accessible. Please check the image and registry credential.", requestImage(req), name)
	case NotFound:
		status = http.StatusNotFound
		msg = fmt.Sprintf("The Resource 'Microsoft.ContainerInstance/containerGroups/%s' under resource group '%s' was not found.", name, rg)
	case Conflict:
		status = http.StatusConflict
		msg = fmt.Sprintf("Another operation on this or dependent resource is in progress. To retry later, please check the status of the operation on '%s'.", scope)
	case QuotaReached:
		status = http.StatusConflict
		msg = fmt.Sprintf("Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota 'ContainerGroups' exceeded in region '%s'. Limit: '100', Usage: '100' Requested: '1'.", a.Location)
	default:
		return nil, fmt.Errorf("acifake: unknown fault %q", f)
	}
	body, _ := json.Marshal(map[string]any{"error": map[string]string{"code": string(f), "message": msg}})
	return &http.Response{
		Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: header, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: req,
	}, nil
}

// action is the Azure RBAC action an operation needs.
func action(op Op) string {
	switch op {
	case OpCreate:
		return "Microsoft.ContainerInstance/containerGroups/write"
	case OpDelete:
		return "Microsoft.ContainerInstance/containerGroups/delete"
	case OpStop:
		return "Microsoft.ContainerInstance/containerGroups/stop/action"
	}
	return "Microsoft.ContainerInstance/containerGroups/read"
}

// requestImage reads the first container's image from a create request,
// leaving the body readable.
func requestImage(req *http.Request) string {
	if req.Body == nil {
		return ""
	}
	data, err := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(data))
	if err != nil {
		return ""
	}
	var g armcontainerinstance.ContainerGroup
	if json.Unmarshal(data, &g) != nil || g.Properties == nil || len(g.Properties.Containers) == 0 ||
		g.Properties.Containers[0].Properties == nil || g.Properties.Containers[0].Properties.Image == nil {
		return ""
	}
	return *g.Properties.Containers[0].Properties.Image
}

// clone deep-copies a group through its JSON form.
func clone(g *armcontainerinstance.ContainerGroup) armcontainerinstance.ContainerGroup {
	data, err := json.Marshal(g)
	if err != nil {
		panic("acifake: marshal container group: " + err.Error())
	}
	var out armcontainerinstance.ContainerGroup
	if err := json.Unmarshal(data, &out); err != nil {
		panic("acifake: unmarshal container group: " + err.Error())
	}
	return out
}

// redact returns a copy as ARM returns it: secure values are never echoed.
func redact(g armcontainerinstance.ContainerGroup) armcontainerinstance.ContainerGroup {
	out := clone(&g)
	for _, c := range out.Properties.Containers {
		for _, e := range c.Properties.EnvironmentVariables {
			e.SecureValue = nil
		}
	}
	for _, c := range out.Properties.InitContainers {
		if c.Properties != nil {
			for _, e := range c.Properties.EnvironmentVariables {
				e.SecureValue = nil
			}
		}
	}
	for _, r := range out.Properties.ImageRegistryCredentials {
		r.Password = nil
	}
	return out
}
