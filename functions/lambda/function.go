package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	ecsbackend "github.com/pushpool/pushpool/dispatch/backend/ecs"
	"github.com/pushpool/pushpool/dispatch/backends"
	"github.com/pushpool/pushpool/dispatch/invoke"
	"github.com/pushpool/pushpool/functions/internal/fnapp"
)

// The AWS part of the environment contract.
const (
	EnvAPIKeySecretARN  = "PUSHPOOL_PREFECT_API_KEY_SECRET_ARN"
	EnvWebhookSecretARN = "PUSHPOOL_WEBHOOK_SECRET_ARN"
	EnvQueueURL         = "PUSHPOOL_QUEUE_URL"
)

// function is one execution environment: the secrets are read once, at
// init, and kept for its life.
type function struct {
	h   *invoke.Handler
	log *slog.Logger
}

func newFunction(ctx context.Context, linked backends.Set, lookup func(string) (string, bool), logger *slog.Logger) (*function, error) {
	s, err := fnapp.FromEnv(lookup)
	if err != nil {
		return nil, err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load the AWS configuration: %w", err)
	}
	get := func(name string) string { v, _ := lookup(name); return strings.TrimSpace(v) }
	var webhookSecret []byte
	if arn := get(EnvAPIKeySecretARN); arn != "" || get(EnvWebhookSecretARN) != "" {
		sm := secretsmanager.NewFromConfig(awsCfg)
		if arn != "" {
			key, err := secretValue(ctx, sm, arn, EnvAPIKeySecretARN)
			if err != nil {
				return nil, err
			}
			s.Prefect.APIKey = key
		}
		if arn := get(EnvWebhookSecretARN); arn != "" {
			v, err := secretValue(ctx, sm, arn, EnvWebhookSecretARN)
			if err != nil {
				return nil, err
			}
			webhookSecret = []byte(v)
		}
	}
	var queue invoke.Queue
	if url := get(EnvQueueURL); url != "" {
		queue = &sqsQueue{client: sqs.NewFromConfig(awsCfg), url: url}
	}
	h, err := fnapp.Build(s, linked, queue, webhookSecret, logger)
	if err != nil {
		return nil, err
	}
	return &function{h: h, log: logger}, nil
}

// secretValue reads a Secrets Manager secret; the error names the variable
// and the permission, never the value.
func secretValue(ctx context.Context, sm *secretsmanager.Client, arn, variable string) (string, error) {
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil {
		return "", fmt.Errorf("read secret %s (from %s): %w; the function's role needs secretsmanager:GetSecretValue on it", arn, variable, err)
	}
	if out.SecretString == nil || strings.TrimSpace(*out.SecretString) == "" {
		return "", fmt.Errorf("secret %s (from %s) has no string value: store the value as a plain string", arn, variable)
	}
	return strings.TrimSpace(*out.SecretString), nil
}

// envelope holds the fields that tell the event kinds apart.
type envelope struct {
	Records []struct {
		EventSource string `json:"eventSource"`
	} `json:"Records"`
	DetailType     string          `json:"detail-type"`
	Source         string          `json:"source"`
	RequestContext json.RawMessage `json:"requestContext"`
	HTTPMethod     string          `json:"httpMethod"`
	Pushpool       string          `json:"pushpool"`
}

// Handle is the Lambda handler: it tells the event kinds apart by shape and
// answers in each one's reply format.
func (f *function) Handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("the event is not a JSON object: %w", err)
	}
	switch {
	case len(env.Records) > 0 && env.Records[0].EventSource == "aws:sqs":
		var ev events.SQSEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("decode the SQS batch: %w", err)
		}
		return f.sqsBatch(ctx, ev), nil
	case len(env.RequestContext) > 0 && env.RequestContext[0] == '{':
		return f.http(ctx, raw), nil
	case env.DetailType == "ECS Task State Change":
		return nil, f.ecsEvent(ctx, raw)
	case env.DetailType == "Scheduled Event" || env.Pushpool == "tick":
		return f.tick(ctx)
	}
	return nil, fmt.Errorf("unrecognised event (detail-type %q, source %q): pushpool takes EventBridge Scheduler ticks with input {\"pushpool\":\"tick\"}, SQS batches, ECS Task State Change events and Function URL webhooks", env.DetailType, env.Source)
}

func (f *function) tick(ctx context.Context) (fnapp.TickReply, error) {
	res := f.h.Tick(ctx)
	out := fnapp.Summarise(ctx, res, f.log)
	// A failing pool fails the invocation, so it shows in the function's
	// error metric; the other pools were still served.
	return out, res.Err()
}

// sqsBatch handles each record on its own and reports the ones to deliver
// again (ReportBatchItemFailures), never the whole batch.
func (f *function) sqsBatch(ctx context.Context, ev events.SQSEvent) events.SQSEventResponse {
	var resp events.SQSEventResponse
	for _, rec := range ev.Records {
		if err := f.record(ctx, []byte(rec.Body)); err != nil {
			f.log.WarnContext(ctx, "queue message failed; it will be delivered again", slog.String("message_id", rec.MessageId), slog.String("error", err.Error()))
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
		}
	}
	return resp
}

// record is one SQS message: a pushpool shard or wake-up, or an ECS task
// state change that EventBridge delivered to the queue.
func (f *function) record(ctx context.Context, body []byte) error {
	m, err := invoke.DecodeMessage(body)
	if errors.Is(err, invoke.ErrNotMessage) {
		return f.ecsEvent(ctx, body)
	}
	if err != nil {
		return err
	}
	res, err := f.h.HandleMessage(ctx, m)
	for _, r := range res.Runs {
		f.log.InfoContext(ctx, "woken flow run", slog.String("work_pool", m.Pool), slog.String("flow_run_id", r.FlowRunID), slog.String("outcome", string(r.Outcome)))
	}
	return err
}

func (f *function) ecsEvent(ctx context.Context, body []byte) error {
	ev, ok, err := ecsbackend.ParseTaskStateChange(body)
	if err != nil {
		return err
	}
	if !ok {
		// Another event, or a task pushpool did not start: nothing to do,
		// and nothing to deliver again.
		f.log.DebugContext(ctx, "event ignored: not a task state change of a pushpool task")
		return nil
	}
	c, acted, err := f.h.Observe(ctx, ev)
	if acted {
		f.log.InfoContext(ctx, "infrastructure event applied", slog.String("flow_run_id", c.FlowRunID), slog.String("action", string(c.Action)), slog.String("message", c.Message))
	}
	return err
}

// http serves a webhook from a Function URL (payload format 2.0, also API
// Gateway HTTP APIs) or an API Gateway REST API (1.0).
func (f *function) http(ctx context.Context, raw json.RawMessage) events.LambdaFunctionURLResponse {
	var req struct {
		Headers         map[string]string `json:"headers"`
		Body            string            `json:"body"`
		IsBase64Encoded bool              `json:"isBase64Encoded"`
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		return reply(http.StatusBadRequest, map[string]string{"error": "undecodable request"})
	}
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return reply(http.StatusBadRequest, map[string]string{"error": "body is not valid base64"})
		}
		body = b
	}
	sig := ""
	for k, v := range req.Headers {
		if strings.EqualFold(k, invoke.SignatureHeader) {
			sig = v
		}
	}
	res, err := f.h.Webhook(ctx, sig, body)
	return reply(invoke.WebhookReply(ctx, f.log, res, err))
}

func reply(status int, body any) events.LambdaFunctionURLResponse {
	b, _ := json.Marshal(body)
	return events.LambdaFunctionURLResponse{StatusCode: status, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(b)}
}
