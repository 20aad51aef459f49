package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"

	"github.com/pushpool/pushpool/dispatch/backends"
	"github.com/pushpool/pushpool/dispatch/invoke"
	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/functions/internal/fnapp"
)

// The Azure part of the environment contract: app settings, and what the
// Functions host sets for a custom handler.
const (
	// EnvQueue is the storage queue of shards and wake-ups, which the
	// fanout function is triggered by (its function.json names
	// %PUSHPOOL_QUEUE%).
	EnvQueue = "PUSHPOOL_QUEUE"
	// EnvWebhookSecret is the key of signed webhooks; like PREFECT_API_KEY
	// it is usually a Key Vault reference the platform resolves.
	EnvWebhookSecret = "PUSHPOOL_WEBHOOK_SECRET"
	// EnvStorage is the storage account of the app and its queue, as a
	// connection string. Identity-based connections set EnvStorageAccount
	// or EnvStorageQueueURI instead, and EnvStorageClientID for a
	// user-assigned identity.
	EnvStorage         = "AzureWebJobsStorage"
	EnvStorageAccount  = "AzureWebJobsStorage__accountName"
	EnvStorageQueueURI = "AzureWebJobsStorage__queueServiceUri"
	EnvStorageClientID = "AzureWebJobsStorage__clientId"
	// EnvPort is where the host expects the handler to listen.
	EnvPort = "FUNCTIONS_CUSTOMHANDLER_PORT"
	// EnvAppRoot is the app's root, which holds host.json.
	EnvAppRoot = "FUNCTIONS_APP_ROOT_PATH"
	// EnvFunctionTimeout overrides host.json's functionTimeout.
	EnvFunctionTimeout = "AzureFunctionsJobHost__functionTimeout"
)

// The app's functions are the folders under app/, which name the paths the
// host posts to; the binding names come from their function.json.
const (
	fnTick       = "tick"
	fnFanout     = "fanout"
	fnWebhook    = "webhook"
	bindTimer    = "timer"
	bindMessage  = "message"
	bindRequest  = "req"
	bindResponse = "res"
	// outSummary carries a trigger's summary in Outputs. No binding has the
	// name, so the host ignores it, but it warns about an empty Outputs.
	outSummary = "pushpool"
)

// defaultFunctionTimeout is the Consumption plan's function timeout, used
// when neither host.json nor the app settings give one.
const defaultFunctionTimeout = 5 * time.Minute

// answerMargin is kept from the function timeout to answer the host.
const answerMargin = 5 * time.Second

// function is one handler process: settings are read once, at start, and
// kept for its life.
type function struct {
	h   *invoke.Handler
	log *slog.Logger
	// timeout bounds each invocation: the function timeout less
	// answerMargin; zero means none.
	timeout time.Duration
}

// newFunction reads the app settings (the shared contract of fnapp plus
// the Azure ones above) and builds the handler. Every error names the
// setting and the fix.
func newFunction(linked backends.Set, lookup func(string) (string, bool), logger *slog.Logger) (*function, error) {
	if err := unresolvedKeyVaultReferences(lookup); err != nil {
		return nil, err
	}
	s, err := fnapp.FromEnv(lookup)
	if err != nil {
		return nil, err
	}
	get := func(name string) string { v, _ := lookup(name); return strings.TrimSpace(v) }
	name := get(EnvQueue)
	if name == "" {
		return nil, fmt.Errorf("%s is not set: set it to the storage queue the fanout function is triggered by (its function.json names %%%s%%), e.g. pushpool-wake", EnvQueue, EnvQueue)
	}
	client, err := queueClient(get, name)
	if err != nil {
		return nil, err
	}
	timeout, err := functionTimeout(get)
	if err != nil {
		return nil, err
	}
	if timeout > answerMargin {
		timeout -= answerMargin
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h, err := fnapp.Build(s, linked, &storageQueue{client: client, name: name}, []byte(get(EnvWebhookSecret)), logger)
	if err != nil {
		return nil, err
	}
	return &function{h: h, log: logger, timeout: timeout}, nil
}

// unresolvedKeyVaultReferences fails for every setting that still holds a
// Key Vault reference: the platform leaves the reference text in place
// when it cannot read the secret, and using it as the value would only
// fail later, less clearly.
func unresolvedKeyVaultReferences(lookup func(string) (string, bool)) error {
	var errs []error
	for _, name := range []string{prefect.EnvAPIURL, prefect.EnvAPIKey, prefect.EnvAuthString, prefect.EnvCustomHeaders, EnvWebhookSecret, EnvStorage} {
		v, _ := lookup(name)
		if strings.HasPrefix(strings.TrimSpace(v), "@Microsoft.KeyVault(") {
			errs = append(errs, fmt.Errorf("app setting %s is a Key Vault reference the platform could not resolve, so the handler will not start: grant the function app's managed identity get on the vault's secrets (the Key Vault Secrets User role, or an access policy with Get), check that the reference names an existing secret, then restart the app; the app's Environment variables page shows why the reference failed", name))
		}
	}
	return errors.Join(errs...)
}

// queueClient connects to the queue in the app's storage account, with
// the connection string of AzureWebJobsStorage or, for an identity-based
// connection, the app's managed identity.
func queueClient(get func(string) string, name string) (*azqueue.QueueClient, error) {
	if conn := get(EnvStorage); conn != "" {
		if conn == "UseDevelopmentStorage=true" {
			// Azurite's documented development account, as `func start` uses it.
			conn = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;" +
				"AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;" +
				"QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
		}
		c, err := azqueue.NewQueueClientFromConnectionString(conn, name, nil)
		if err != nil {
			return nil, fmt.Errorf("%s is not a usable storage connection string (the value is not shown): %w", EnvStorage, err)
		}
		return c, nil
	}
	uri := get(EnvStorageQueueURI)
	if account := get(EnvStorageAccount); uri == "" && account != "" {
		uri = "https://" + account + ".queue.core.windows.net"
	}
	if uri == "" {
		return nil, fmt.Errorf("no storage account for queue %q: set %s to a connection string, or %s (identity-based) to the app's storage account", name, EnvStorage, EnvStorageAccount)
	}
	var cred azcore.TokenCredential
	var err error
	if id := get(EnvStorageClientID); id != "" {
		cred, err = azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID(id)})
	} else {
		cred, err = azidentity.NewDefaultAzureCredential(nil)
	}
	if err != nil {
		return nil, fmt.Errorf("build the credential of the storage connection (%s): %w", uri, err)
	}
	c, err := azqueue.NewQueueClient(runtime.JoinPaths(uri, name), cred, nil)
	if err != nil {
		return nil, fmt.Errorf("connect to storage queue %q at %s: %w", name, uri, err)
	}
	return c, nil
}

// functionTimeout is the app's functionTimeout: the app setting that
// overrides host.json, else host.json in the app's root, else the
// Consumption plan's default. "-1" (no limit) is zero.
func functionTimeout(get func(string) string) (time.Duration, error) {
	if v := get(EnvFunctionTimeout); v != "" {
		d, err := parseTimeSpan(v)
		if err != nil {
			return 0, fmt.Errorf("%s is %q: %w", EnvFunctionTimeout, v, err)
		}
		return d, nil
	}
	root := get(EnvAppRoot)
	if root == "" {
		root = "."
	}
	path := filepath.Join(root, "host.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return defaultFunctionTimeout, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	var host struct {
		FunctionTimeout string `json:"functionTimeout"`
	}
	if err := json.Unmarshal(data, &host); err != nil {
		return 0, fmt.Errorf("read functionTimeout from %s: %w", path, err)
	}
	if host.FunctionTimeout == "" {
		return defaultFunctionTimeout, nil
	}
	d, err := parseTimeSpan(host.FunctionTimeout)
	if err != nil {
		return 0, fmt.Errorf("functionTimeout in %s is %q: %w", path, host.FunctionTimeout, err)
	}
	return d, nil
}

// parseTimeSpan reads a .NET TimeSpan as host.json writes one,
// [d.]hh:mm:ss[.fffffff]; "-1" means no limit and is zero.
func parseTimeSpan(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "-1" {
		return 0, nil
	}
	bad := errors.New(`want a time span such as "00:05:00" (hh:mm:ss), or -1 for no limit`)
	parts := strings.Split(v, ":")
	if len(parts) != 3 {
		return 0, bad
	}
	days := 0
	if d, h, ok := strings.Cut(parts[0], "."); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return 0, bad
		}
		days, parts[0] = n, h
	}
	hours, err1 := strconv.Atoi(parts[0])
	minutes, err2 := strconv.Atoi(parts[1])
	seconds, err3 := strconv.ParseFloat(parts[2], 64)
	if err1 != nil || err2 != nil || err3 != nil || hours < 0 || minutes < 0 || minutes > 59 || seconds < 0 || seconds >= 60 {
		return 0, bad
	}
	return time.Duration(days)*24*time.Hour + time.Duration(hours)*time.Hour + time.Duration(minutes)*time.Minute +
		time.Duration(seconds*float64(time.Second)), nil
}

// routes serves the host: one path per function, and GET / for the
// host's readiness check.
func (f *function) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("pushpool\n")) })
	mux.Handle("POST /"+fnTick, f.invocation(fnTick, f.tick))
	mux.Handle("POST /"+fnFanout, f.invocation(fnFanout, f.fanout))
	mux.Handle("POST /"+fnWebhook, f.invocation(fnWebhook, f.webhook))
	return mux
}

// trigger handles one invocation and returns the status to answer the host
// (2xx: done; else the invocation failed) with the reply.
type trigger func(ctx context.Context, log *slog.Logger, req invocationRequest) (int, invocationResponse)

// maxInvocationBytes bounds an invocation body (a webhook's body is in it).
const maxInvocationBytes = 8 << 20

// invocation decodes the host's request, bounds it by the function
// timeout and writes the reply.
func (f *function) invocation(name string, fn trigger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := f.log.With(slog.String("function", name), slog.String("invocation_id", r.Header.Get("X-Azure-Functions-InvocationId")))
		var req invocationRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxInvocationBytes)).Decode(&req); err != nil {
			log.Error("undecodable invocation from the Functions host", slog.String("error", err.Error()))
			writeJSON(w, http.StatusBadRequest, invocationResponse{Logs: []string{"pushpool: undecodable invocation: " + err.Error()}})
			return
		}
		ctx := r.Context()
		if f.timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, f.timeout)
			defer cancel()
		}
		status, resp := fn(ctx, log, req)
		if resp.Outputs == nil {
			resp.Outputs = map[string]any{}
		}
		writeJSON(w, status, resp)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"Outputs":{},"Logs":["pushpool: could not encode the reply"]}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// tick serves the timer trigger: one dispatch and reconcile pass over
// every pool. A pool that fails fails the invocation (500), so it counts
// in the function's failures; the other pools were still served.
func (f *function) tick(ctx context.Context, log *slog.Logger, req invocationRequest) (int, invocationResponse) {
	var timer timerInfo
	if raw, ok := req.Data[bindTimer]; ok && json.Unmarshal(unquote(raw), &timer) == nil && timer.IsPastDue {
		log.InfoContext(ctx, "timer is past due: the last tick ran late or was missed")
	}
	res := f.h.Tick(ctx)
	sum := fnapp.Summarise(ctx, res, log)
	var logs []string
	for _, ps := range sum.Pools {
		logs = append(logs, fmt.Sprintf("work pool %s: outcomes %v, %d run(s) fanned out in %d shard(s), %d wake-up(s), reconciled %v", ps.Pool, ps.Outcomes, ps.Fanned, ps.Shards, ps.Woken, ps.Reconciled))
	}
	status := http.StatusOK
	if err := res.Err(); err != nil {
		status = http.StatusInternalServerError
		logs = append(logs, "pushpool: "+err.Error())
	}
	return status, invocationResponse{Outputs: map[string]any{outSummary: sum}, Logs: logs, ReturnValue: sum}
}

// fanout serves the queue trigger: a fan-out shard or a wake-up. A message
// that fails answers 500, which fails the invocation: the host makes the
// message visible again after the queues' visibilityTimeout (host.json)
// and, once it has been dequeued maxDequeueCount times, moves it to the
// poison queue <queue>-poison. A malformed message goes there too.
func (f *function) fanout(ctx context.Context, log *slog.Logger, req invocationRequest) (int, invocationResponse) {
	log = log.With(slog.String("message_id", metaString(req.Metadata, "Id")), slog.Int("dequeue_count", metaInt(req.Metadata, "DequeueCount")))
	fail := func(err error) (int, invocationResponse) {
		log.WarnContext(ctx, "queue message failed; the host delivers it again until maxDequeueCount, then moves it to the poison queue", slog.String("error", err.Error()))
		return http.StatusInternalServerError, invocationResponse{Logs: []string{"pushpool: " + err.Error()}}
	}
	raw, ok := req.Data[bindMessage]
	if !ok {
		return fail(fmt.Errorf("the invocation has no %q binding: deploy functions/azure/app/%s/function.json as built", bindMessage, fnFanout))
	}
	m, err := decodeQueueMessage(unquote(raw))
	if err != nil {
		return fail(err)
	}
	res, err := f.h.HandleMessage(ctx, m)
	outcomes := map[string]string{}
	for _, r := range res.Runs {
		outcomes[r.FlowRunID] = string(r.Outcome)
		log.InfoContext(ctx, "woken flow run", slog.String("work_pool", m.Pool), slog.String("flow_run_id", r.FlowRunID), slog.String("outcome", string(r.Outcome)))
	}
	if err != nil {
		return fail(err)
	}
	return http.StatusOK, invocationResponse{Outputs: map[string]any{outSummary: outcomes}, ReturnValue: outcomes,
		Logs: []string{fmt.Sprintf("work pool %s: %v", m.Pool, outcomes)}}
}

// decodeQueueMessage decodes a message as the trigger hands it over: its
// JSON, or that JSON still in base64 when the app's messageEncoding is
// "none".
func decodeQueueMessage(body []byte) (invoke.Message, error) {
	if len(body) > 0 && body[0] != '{' {
		if b, err := base64.StdEncoding.DecodeString(string(body)); err == nil {
			body = b
		}
	}
	return invoke.DecodeMessage(body)
}

// webhook serves the HTTP trigger: a signed announcement of a flow run.
// Its answer is the res output binding; the invocation itself succeeds
// whatever the status, so the caller gets the reason.
func (f *function) webhook(ctx context.Context, log *slog.Logger, req invocationRequest) (int, invocationResponse) {
	reply := func(status int, body any) (int, invocationResponse) {
		b, _ := json.Marshal(body)
		res := httpResponse{StatusCode: status, Body: string(b), Headers: map[string]string{"Content-Type": "application/json"}}
		return http.StatusOK, invocationResponse{Outputs: map[string]any{bindResponse: res}, ReturnValue: res}
	}
	var hr httpRequestData
	if err := json.Unmarshal(req.Data[bindRequest], &hr); err != nil {
		return reply(http.StatusBadRequest, map[string]string{"error": "undecodable request"})
	}
	body, err := hr.body()
	if err != nil {
		return reply(http.StatusBadRequest, map[string]string{"error": err.Error()})
	}
	res, err := f.h.Webhook(ctx, hr.header(invoke.SignatureHeader), body)
	return reply(invoke.WebhookReply(ctx, log, res, err))
}
