package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	cloudtasks "cloud.google.com/go/cloudtasks/apiv2"
	"cloud.google.com/go/pubsub/v2"
	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pushpool/pushpool/dispatch/backends"
	"github.com/pushpool/pushpool/dispatch/invoke"
	"github.com/pushpool/pushpool/functions/internal/fnapp"
)

// maxBody bounds a request body: pushpool's payloads are small; Pub/Sub
// messages are at most 10 MB.
const maxBody = 1 << 20

// startupTimeout bounds what the function does before it serves: reading
// the secrets and creating the clients.
const startupTimeout = 60 * time.Second

// function is one instance of the service: its secrets are read once, at
// start, and its clients kept for its life.
type function struct {
	h   *invoke.Handler
	log *slog.Logger
	cfg Config
	// tickTTL is how old a delivered tick may be: an older one has been
	// superseded by the next tick, so a tick that keeps failing is not
	// redelivered for days.
	tickTTL time.Duration
	now     func() time.Time
	mux     *http.ServeMux
	closers []func() error
}

// newFunction reads the environment and the secrets, creates the clients
// and the Handler. Every configuration error names its variable.
func newFunction(ctx context.Context, linked backends.Set, lookup func(string) (string, bool), logger *slog.Logger) (*function, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s, serr := fnapp.FromEnv(lookup)
	cfg, cerr := configFromEnv(lookup)
	if err := errors.Join(serr, cerr); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	f := &function{log: logger, cfg: cfg, tickTTL: s.WakeHorizon, now: time.Now}
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
		}
	}()

	webhookSecret := []byte(cfg.WebhookSecretValue)
	if cfg.APIKeySecret != "" || cfg.AuthStringSecret != "" || cfg.WebhookSecret != "" {
		sm, err := secretmanager.NewClient(ctx, clientOptions(cfg.SecretManagerEndpoint)...)
		if err != nil {
			return nil, fmt.Errorf("create the Secret Manager client: %w", err)
		}
		defer sm.Close()
		read := func(name, variable string, into *string) error {
			if name == "" {
				return nil
			}
			v, err := secretValue(ctx, sm, name, variable)
			*into = v
			return err
		}
		var wh string
		if err := errors.Join(
			read(cfg.APIKeySecret, EnvAPIKeySecret, &s.Prefect.APIKey),
			read(cfg.AuthStringSecret, EnvAuthStringSecret, &s.Prefect.AuthString),
			read(cfg.WebhookSecret, EnvWebhookSecret, &wh),
		); err != nil {
			return nil, err
		}
		if wh != "" {
			webhookSecret = []byte(wh)
		}
	}

	if len(webhookSecret) == 0 && cfg.Routes.Webhook {
		if !cfg.Routes.Events {
			return nil, fmt.Errorf("%s=webhook but no webhook secret is set: set %s (a secret version) or mount the secret as %s", EnvRoutes, EnvWebhookSecret, EnvWebhookSecretValue)
		}
		logger.WarnContext(ctx, "no webhook secret is set, so /webhook refuses every request", slog.String("fix", "set "+EnvWebhookSecret+" or "+EnvWebhookSecretValue))
	}

	queue, err := f.queue(ctx)
	if err != nil {
		return nil, err
	}
	f.h, err = fnapp.Build(s, linked, queue, webhookSecret, logger)
	if err != nil {
		return nil, err
	}
	f.mux = http.NewServeMux()
	f.mux.HandleFunc("POST /webhook", f.webhook)
	f.mux.HandleFunc("POST /", f.event)
	ok = true
	return f, nil
}

// queue creates the Pub/Sub and Cloud Tasks clients the configuration
// asks for; nil when it asks for neither.
func (f *function) queue(ctx context.Context) (invoke.Queue, error) {
	cfg := f.cfg
	if cfg.Topic == "" && cfg.TasksQueue == "" {
		return nil, nil
	}
	q := &gcpQueue{topic: cfg.Topic, queue: cfg.TasksQueue, selfURL: cfg.SelfURL, serviceAccount: cfg.TasksServiceAccount}
	if cfg.Topic != "" {
		project := topicRe.FindStringSubmatch(cfg.Topic)[1]
		// The client outlives ctx, which only bounds its creation.
		ps, err := pubsub.NewClient(context.WithoutCancel(ctx), project, clientOptions(cfg.PubSubEndpoint)...)
		if err != nil {
			return nil, fmt.Errorf("create the Pub/Sub client for %s=%s: %w", EnvTopic, cfg.Topic, err)
		}
		p := ps.Publisher(cfg.Topic)
		f.closers = append(f.closers, func() error { p.Stop(); return ps.Close() })
		q.pub = p
	}
	if cfg.TasksQueue != "" {
		ct, err := cloudtasks.NewClient(context.WithoutCancel(ctx), clientOptions(cfg.TasksEndpoint)...)
		if err != nil {
			return nil, fmt.Errorf("create the Cloud Tasks client for %s=%s: %w", EnvTasksQueue, cfg.TasksQueue, err)
		}
		f.closers = append(f.closers, ct.Close)
		q.tasks = ct
	}
	return q, nil
}

// Close flushes the publisher and closes the clients.
func (f *function) Close() error {
	var errs []error
	for _, c := range f.closers {
		errs = append(errs, c())
	}
	f.closers = nil
	return errors.Join(errs...)
}

// clientOptions points a client at an emulator when endpoint is set.
func clientOptions(endpoint string) []option.ClientOption {
	if endpoint == "" {
		return nil
	}
	return []option.ClientOption{option.WithEndpoint(endpoint), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))}
}

// secretAccessor is the part of the Secret Manager client the function
// calls.
type secretAccessor interface {
	AccessSecretVersion(ctx context.Context, req *secretmanagerpb.AccessSecretVersionRequest, opts ...gax.CallOption) (*secretmanagerpb.AccessSecretVersionResponse, error)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// secretValue reads a secret version; the error names the variable and
// the role, never the value.
func secretValue(ctx context.Context, sm secretAccessor, name, variable string) (string, error) {
	out, err := sm.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: name})
	if err != nil {
		return "", fmt.Errorf("read secret version %s (from %s): %w; check that it exists and that the function's service account has roles/secretmanager.secretAccessor on the secret", name, variable, err)
	}
	data := out.GetPayload().GetData()
	if sum := out.GetPayload().DataCrc32C; sum != nil && int64(crc32.Checksum(data, castagnoli)) != *sum {
		return "", fmt.Errorf("secret version %s (from %s) arrived corrupted (CRC32C mismatch); restart to read it again", name, variable)
	}
	v := strings.TrimSpace(string(data))
	if v == "" {
		return "", fmt.Errorf("secret version %s (from %s) is empty: add a version holding the value", name, variable)
	}
	return v, nil
}

// ServeHTTP routes a request: /webhook to the webhook, every other path to
// the platform events.
func (f *function) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.mux.ServeHTTP(w, r) }

// requestContext is the context of one request: its deadline is the
// service's request timeout, and it is not cancelled when the caller hangs
// up (Pub/Sub stops waiting at its ack deadline), so a dispatch pass ends
// with its runs recorded rather than half-claimed.
func (f *function) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), f.cfg.RequestTimeout)
}

// event serves the platform's deliveries. A 2xx reply acknowledges the
// delivery; any other makes Pub/Sub, Eventarc and Cloud Tasks deliver it
// again, until their retry policy moves it to the dead-letter topic (or
// drops the task). So:
//
//   - a tick answers 200, or 500 when a pool could not be served; a tick
//     older than the wake horizon is acknowledged without work (the next
//     tick has superseded it);
//   - a shard or wake-up answers 200, or 500 when a run should be tried
//     again (invoke.Handler.HandleMessage's error);
//   - a malformed pushpool message answers 500, as on AWS: retried, then
//     dead-lettered, where it can be inspected;
//   - a Pub/Sub message that is not pushpool's is acknowledged (200) and
//     logged: it will never be, and is not ours to dead-letter;
//   - a request that is no known delivery answers 400.
func (f *function) event(w http.ResponseWriter, r *http.Request) {
	if !f.cfg.Routes.Events {
		reply(w, http.StatusNotFound, map[string]string{"error": "this service serves only the webhook, on /webhook (" + EnvRoutes + ")"})
		return
	}
	ctx, cancel := f.requestContext(r)
	defer cancel()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		reply(w, http.StatusBadRequest, map[string]string{"error": "read the request body: " + err.Error()})
		return
	}
	d, err := decodeDelivery(r.Header, body)
	if err != nil {
		f.log.ErrorContext(ctx, "undecodable delivery", slog.String("error", err.Error()))
		reply(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	log := f.log.With(slog.String("source", string(d.Source)), slog.String("message_id", d.ID))
	kind, m, err := classify(d.Data)
	switch {
	case err != nil:
		log.ErrorContext(ctx, "malformed pushpool message; it will be delivered again, then dead-lettered", slog.String("error", err.Error()))
		reply(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	case kind == kindTick:
		f.tick(ctx, w, d, log)
	case kind == kindMessage:
		f.message(ctx, w, m, log)
	case d.Source == fromPubSub || d.Source == fromEventarc:
		log.WarnContext(ctx, "message ignored: not a pushpool tick or queue message", slog.String("data", fmt.Sprintf("%.80q", d.Data)))
		reply(w, http.StatusOK, map[string]string{"ignored": "not a pushpool message"})
	default:
		err := fmt.Errorf(`%s request body is neither a tick ({"pushpool":"tick"}) nor a pushpool queue message: %.80q`, d.Source, d.Data)
		log.ErrorContext(ctx, "undecodable delivery", slog.String("error", err.Error()))
		reply(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	}
}

func (f *function) tick(ctx context.Context, w http.ResponseWriter, d delivery, log *slog.Logger) {
	if !d.Published.IsZero() {
		if age := f.now().Sub(d.Published); age > f.tickTTL {
			log.WarnContext(ctx, "stale tick acknowledged without work; a later tick has superseded it", slog.Duration("age", age), slog.Int("attempt", d.Attempt))
			reply(w, http.StatusOK, fnapp.TickReply{Skipped: fmt.Sprintf("tick published %v ago, more than the wake horizon (%v)", age.Round(time.Second), f.tickTTL)})
			return
		}
	}
	res := f.h.Tick(ctx)
	out := fnapp.Summarise(ctx, res, log)
	if err := res.Err(); err != nil {
		// A failing pool fails the request, so it shows in the service's
		// error rate and the tick is delivered again while it is fresh;
		// the other pools were still served.
		log.ErrorContext(ctx, "tick failed", slog.String("error", err.Error()))
		reply(w, http.StatusInternalServerError, out)
		return
	}
	reply(w, http.StatusOK, out)
}

// messageReply is what a shard or wake-up answers.
type messageReply struct {
	Pool     string         `json:"work_pool"`
	Outcomes map[string]int `json:"outcomes"`
	Error    string         `json:"error,omitempty"`
}

func (f *function) message(ctx context.Context, w http.ResponseWriter, m invoke.Message, log *slog.Logger) {
	res, err := f.h.HandleMessage(ctx, m)
	out := messageReply{Pool: m.Pool, Outcomes: map[string]int{}}
	for _, r := range res.Runs {
		out.Outcomes[string(r.Outcome)]++
		log.InfoContext(ctx, "woken flow run", slog.String("work_pool", m.Pool), slog.String("flow_run_id", r.FlowRunID), slog.String("outcome", string(r.Outcome)))
	}
	if err != nil {
		out.Error = err.Error()
		log.WarnContext(ctx, "queue message failed; it will be delivered again", slog.String("work_pool", m.Pool), slog.String("error", err.Error()))
		reply(w, http.StatusInternalServerError, out)
		return
	}
	reply(w, http.StatusOK, out)
}

// webhook serves a signed webhook: 200 with the invoke.WebhookResult, 401
// when the signature fails, 400 for a body that announces no run, 502 when
// Prefect could not be reached.
func (f *function) webhook(w http.ResponseWriter, r *http.Request) {
	if !f.cfg.Routes.Webhook {
		reply(w, http.StatusNotFound, map[string]string{"error": "this service does not serve the webhook (" + EnvRoutes + ")"})
		return
	}
	ctx, cancel := f.requestContext(r)
	defer cancel()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		reply(w, http.StatusBadRequest, map[string]string{"error": "read the request body: " + err.Error()})
		return
	}
	res, err := f.h.Webhook(ctx, r.Header.Get(invoke.SignatureHeader), body)
	status, out := invoke.WebhookReply(ctx, f.log, res, err)
	reply(w, status, out)
}

func reply(w http.ResponseWriter, status int, body any) {
	b, _ := json.Marshal(body) // maps and structs of strings and ints: cannot fail
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
