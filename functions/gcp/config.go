package main

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pushpool/pushpool/dispatch/prefect"
)

// The Google Cloud part of the environment contract; fnapp reads the shared
// part (PREFECT_API_URL, PUSHPOOL_POOLS, ...).
const (
	// EnvTopic is the Pub/Sub topic fan-out shards are published to
	// (projects/P/topics/T); its push subscription or Eventarc trigger
	// delivers them back to this function.
	EnvTopic = "PUSHPOOL_TOPIC"
	// EnvTasksQueue is the Cloud Tasks queue of delayed wake-ups
	// (projects/P/locations/L/queues/Q).
	EnvTasksQueue = "PUSHPOOL_TASKS_QUEUE"
	// EnvSelfURL is the URL of the service serving the events routes (the
	// private events service when PUSHPOOL_ROUTES splits them), which wake-up
	// tasks POST to; on the webhook service it must still name the events one.
	EnvSelfURL = "PUSHPOOL_SELF_URL"
	// EnvTasksServiceAccount is the service account whose OIDC token
	// wake-up tasks carry, for a service that requires authentication.
	EnvTasksServiceAccount = "PUSHPOOL_TASKS_SERVICE_ACCOUNT"
	// EnvAPIKeySecret, EnvAuthStringSecret and EnvWebhookSecret are Secret
	// Manager secret versions (projects/P/secrets/S/versions/V) read once
	// at start. Cloud Run can instead mount the secrets as the variables
	// PREFECT_API_KEY, PREFECT_API_AUTH_STRING and EnvWebhookSecretValue.
	EnvAPIKeySecret     = "PUSHPOOL_PREFECT_API_KEY_SECRET"
	EnvAuthStringSecret = "PUSHPOOL_PREFECT_AUTH_STRING_SECRET"
	EnvWebhookSecret    = "PUSHPOOL_WEBHOOK_SECRET"
	// EnvWebhookSecretValue is the webhook secret itself, as Cloud Run
	// mounts a secret into the environment.
	EnvWebhookSecretValue = "PUSHPOOL_WEBHOOK_SECRET_VALUE"
	// EnvRoutes chooses what the HTTP server answers: "events" (Pub/Sub,
	// Eventarc, Cloud Tasks, Cloud Scheduler on /), "webhook" (/webhook),
	// or both, comma-separated (the default).
	EnvRoutes = "PUSHPOOL_ROUTES"
	// EnvRequestTimeout is the service's request timeout in seconds: each
	// request's deadline, so dispatch passes stop claiming in time.
	EnvRequestTimeout = "PUSHPOOL_REQUEST_TIMEOUT_SECONDS"
	// EnvPort is the port to listen on; Cloud Run sets it.
	EnvPort = "PORT"
	// EnvPubSubEndpoint, EnvTasksEndpoint and EnvSecretManagerEndpoint
	// point the clients at an emulator or fake (host:port, plaintext, no
	// credentials). PUBSUB_EMULATOR_HOST works too.
	EnvPubSubEndpoint        = "PUSHPOOL_PUBSUB_ENDPOINT"
	EnvTasksEndpoint         = "PUSHPOOL_CLOUDTASKS_ENDPOINT"
	EnvSecretManagerEndpoint = "PUSHPOOL_SECRETMANAGER_ENDPOINT"
)

const (
	defaultRequestTimeout = 300 * time.Second // Cloud Run's default
	maxRequestTimeout     = 60 * time.Minute  // Cloud Run's limit
	defaultPort           = "8080"
)

var (
	topicRe   = regexp.MustCompile(`^projects/([^/]+)/topics/[^/]+$`)
	queueRe   = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+/queues/[A-Za-z0-9-]{1,100}$`)
	versionRe = regexp.MustCompile(`^projects/[^/]+/secrets/[^/]+/versions/[^/]+$`)
)

// Routes says which requests the HTTP server answers.
type Routes struct {
	// Events are Pub/Sub pushes, Eventarc CloudEvents, Cloud Tasks and
	// Cloud Scheduler requests, on any path but /webhook.
	Events bool
	// Webhook is the signed webhook on /webhook.
	Webhook bool
}

// Config is the Google Cloud configuration of the function, read by
// configFromEnv. The zero values of optional fields mean the documented
// defaults.
type Config struct {
	// Topic is the fan-out topic (EnvTopic); empty means shards go to
	// TasksQueue, or nowhere (the tick dispatches every due run itself).
	Topic string
	// TasksQueue is the wake-up queue (EnvTasksQueue); empty means runs
	// due between ticks wait for the next tick.
	TasksQueue string
	// SelfURL is where wake-up tasks are sent (EnvSelfURL); required with
	// TasksQueue.
	SelfURL string
	// TasksServiceAccount signs the tasks' OIDC tokens
	// (EnvTasksServiceAccount); empty sends no token.
	TasksServiceAccount string
	// APIKeySecret, AuthStringSecret and WebhookSecret are secret versions
	// to read at start.
	APIKeySecret, AuthStringSecret, WebhookSecret string
	// WebhookSecretValue is the webhook secret mounted as a variable.
	WebhookSecretValue string
	// Routes are the requests served; both by default.
	Routes Routes
	// RequestTimeout is each request's deadline: 300s by default, at most
	// 60 minutes.
	RequestTimeout time.Duration
	// Port is the port to listen on; 8080 by default.
	Port string
	// Endpoints of emulators and fakes, for tests.
	PubSubEndpoint, TasksEndpoint, SecretManagerEndpoint string

	// mounted reports which Prefect credentials came from the environment
	// itself, to refuse a second source.
	apiKeyMounted, authStringMounted bool
}

// configFromEnv reads and validates the Google Cloud configuration.
func configFromEnv(lookup func(string) (string, bool)) (Config, error) {
	get := func(name string) string { v, _ := lookup(name); return strings.TrimSpace(v) }
	c := Config{
		Topic:                 get(EnvTopic),
		TasksQueue:            get(EnvTasksQueue),
		SelfURL:               get(EnvSelfURL),
		TasksServiceAccount:   get(EnvTasksServiceAccount),
		APIKeySecret:          get(EnvAPIKeySecret),
		AuthStringSecret:      get(EnvAuthStringSecret),
		WebhookSecret:         get(EnvWebhookSecret),
		WebhookSecretValue:    get(EnvWebhookSecretValue),
		Port:                  get(EnvPort),
		PubSubEndpoint:        get(EnvPubSubEndpoint),
		TasksEndpoint:         get(EnvTasksEndpoint),
		SecretManagerEndpoint: get(EnvSecretManagerEndpoint),
		apiKeyMounted:         get(prefect.EnvAPIKey) != "",
		authStringMounted:     get(prefect.EnvAuthString) != "",
	}
	var errs []error
	c.Routes = Routes{Events: true, Webhook: true}
	if v := get(EnvRoutes); v != "" {
		c.Routes = Routes{}
		for _, r := range strings.Split(v, ",") {
			switch strings.TrimSpace(r) {
			case "events":
				c.Routes.Events = true
			case "webhook":
				c.Routes.Webhook = true
			case "":
			default:
				errs = append(errs, fmt.Errorf("%s is %q; it must list events, webhook or both, comma-separated", EnvRoutes, v))
			}
		}
	}
	if v := get(EnvRequestTimeout); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			errs = append(errs, fmt.Errorf("%s is %q; it must be a number of seconds, like 300", EnvRequestTimeout, v))
		} else {
			c.RequestTimeout = time.Duration(f * float64(time.Second))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	c.fillDefaults()
	return c, c.Validate()
}

func (c *Config) fillDefaults() {
	if c.RequestTimeout == 0 {
		c.RequestTimeout = defaultRequestTimeout
	}
	if c.Port == "" {
		c.Port = defaultPort
	}
}

// Validate reports every invalid setting, naming its variable and the fix.
func (c Config) Validate() error {
	var errs []error
	if c.Topic != "" && !topicRe.MatchString(c.Topic) {
		errs = append(errs, fmt.Errorf("%s is %q; it must be a full topic name, projects/PROJECT/topics/TOPIC", EnvTopic, c.Topic))
	}
	if c.TasksQueue != "" && !queueRe.MatchString(c.TasksQueue) {
		errs = append(errs, fmt.Errorf("%s is %q; it must be a full queue name, projects/PROJECT/locations/LOCATION/queues/QUEUE", EnvTasksQueue, c.TasksQueue))
	}
	if c.TasksQueue != "" && c.SelfURL == "" {
		errs = append(errs, fmt.Errorf("%s is set but %s is not: set it to the URL of the service serving the events routes (the events service when PUSHPOOL_ROUTES splits them) so wake-up tasks can reach it", EnvTasksQueue, EnvSelfURL))
	}
	if c.SelfURL != "" {
		if u, err := url.Parse(c.SelfURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s is %q; it must be an absolute URL such as https://pushpool-abc123-uc.a.run.app", EnvSelfURL, c.SelfURL))
		}
	}
	if c.TasksServiceAccount != "" && !strings.Contains(c.TasksServiceAccount, "@") {
		errs = append(errs, fmt.Errorf("%s is %q; it must be a service account email, like pushpool-tasks@PROJECT.iam.gserviceaccount.com", EnvTasksServiceAccount, c.TasksServiceAccount))
	}
	for _, s := range []struct{ name, value string }{
		{EnvAPIKeySecret, c.APIKeySecret}, {EnvAuthStringSecret, c.AuthStringSecret}, {EnvWebhookSecret, c.WebhookSecret},
	} {
		if s.value != "" && !versionRe.MatchString(s.value) {
			errs = append(errs, fmt.Errorf("%s is %q; it must be a secret version, projects/PROJECT/secrets/SECRET/versions/latest (or mount the secret as an environment variable instead)", s.name, s.value))
		}
	}
	for _, both := range []struct {
		ref, mounted string
		set          bool
	}{
		{EnvAPIKeySecret, prefect.EnvAPIKey, c.APIKeySecret != "" && c.apiKeyMounted},
		{EnvAuthStringSecret, prefect.EnvAuthString, c.AuthStringSecret != "" && c.authStringMounted},
		{EnvWebhookSecret, EnvWebhookSecretValue, c.WebhookSecret != "" && c.WebhookSecretValue != ""},
	} {
		if both.set {
			errs = append(errs, fmt.Errorf("both %s and %s are set: give the secret one way, a secret version to read or a mounted value", both.ref, both.mounted))
		}
	}
	if !c.Routes.Events && !c.Routes.Webhook {
		errs = append(errs, fmt.Errorf("%s names no route: list events, webhook or both", EnvRoutes))
	}
	if c.RequestTimeout > maxRequestTimeout {
		errs = append(errs, fmt.Errorf("%s is %v; Cloud Run's request timeout is at most %v", EnvRequestTimeout, c.RequestTimeout, maxRequestTimeout))
	}
	if n, err := strconv.Atoi(c.Port); err != nil || n < 1 || n > 65535 {
		errs = append(errs, fmt.Errorf("%s is %q; it must be a TCP port number", EnvPort, c.Port))
	}
	return errors.Join(errs...)
}
