// Package cloudrun runs flow runs as Cloud Run v2 jobs, the way Prefect's
// cloud-run-v2 worker (prefect-gcp) does: it prepares the job body from the
// pool's job configuration exactly as the worker does, creates the job and
// waits until it is ready; the job starts its one execution itself.
//
// Differences from the worker, and why:
//
//   - One job per attempt (dispatch.Attempt), created with its execution in
//     one call: the job carries a start_execution_token (the attempt key),
//     so Cloud Run starts the execution <job>-<token> as the job becomes
//     ready, and nothing calls RunJob. The worker creates a job, waits for
//     it and runs it. Job names are deterministic: the slug of the
//     configuration's name (32 characters at most; the worker allows 55),
//     12 hex digits of the flow run id and the attempt key (the worker adds
//     7 random hex digits). A repeated or concurrent Start of one attempt
//     gets AlreadyExists from CreateJob and waits for the same job: one
//     execution per attempt, however many dispatchers try. A run that is
//     run again (Retry, resume, reschedule) is a new attempt: a new job.
//   - The job and its execution template carry the labels
//     pushpool-io-attempt=<flow run id>-<attempt key> and
//     pushpool-io-managed=true (and pushpool-io-keep-job=true when keep_job
//     is set), which Status, Stop and Sweep read.
//   - The infrastructure id is the execution's full resource name
//     projects/P/locations/R/jobs/J/executions/E. The worker records the
//     bare job name, which cannot be located again without the job
//     configuration (project, region) that Status and Stop do not get. A bare
//     job name is refused with an error saying so. Find reports that name
//     as soon as the attempt's job exists; until the execution starts,
//     Status reports the job's Ready condition (PENDING, or EXITED -1 with
//     its message when it failed).
//   - Start returns once the execution has started; nothing waits for it to
//     end. Status reports it, and never deletes anything.
//   - Finished jobs are deleted by Sweep (from the reconcile pass), not right
//     after completion, and only once their execution has completed:
//     deleting a running execution SIGTERMs the flow (PrefectHQ/prefect#23025).
//   - Transient errors (503, 429 throttling) are retried with backoff on
//     every call; the readiness poll keeps polling through them until its
//     deadline (PrefectHQ/prefect#22085). Errors that persist wrap
//     dispatch.ErrRetryable so the run is rescheduled, not crashed.
//   - Stop cancels the execution and deletes the job (only cancels when
//     keep_job); the worker deletes the job.
//   - The dispatcher can be configured with Secret Manager secrets for the
//     Prefect API key and auth string (Config.APIKeySecret,
//     Config.AuthStringSecret), used like the job variables
//     prefect_api_key_secret and prefect_api_auth_string_secret when a
//     configuration names none: the key is then read from the secret and
//     never stored in the job in plaintext.
//   - The container env is sorted by name (Go maps have no order).
package cloudrun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"time"

	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/pushpool/pushpool/dispatch"
)

// Config configures a Backend. Zero values mean the documented defaults.
type Config struct {
	// Project is the GCP project of jobs whose configuration has no
	// credentials block naming one, and the project Status, Stop and Sweep
	// use when no Start of this Backend used other credentials there.
	Project string
	// ClientOptions are added to every Cloud Run client, after the
	// credentials of a job configuration's block: an endpoint and
	// credentials for tests, or quota project settings. Without them clients
	// use run.googleapis.com and Application Default Credentials.
	ClientOptions []option.ClientOption
	// PollInterval is how often the readiness of a new job is checked. Zero
	// means 5 seconds, as Prefect's worker.
	PollInterval time.Duration
	// ReadyTimeout bounds the wait for a new job to become ready. Zero means
	// 5 minutes.
	ReadyTimeout time.Duration
	// MaxAttempts is how many times a call failing with a transient error
	// (throttling, 503) is tried. Zero means 5.
	MaxAttempts int
	// Backoff is the first wait between attempts; it doubles up to
	// MaxBackoff. Zero means 1 second and 30 seconds.
	Backoff, MaxBackoff time.Duration
	// Logger receives a line per job created, run, stopped and deleted. Nil
	// discards.
	Logger *slog.Logger
	// Now is the clock Sweep judges ages by. Nil means time.Now.
	Now func() time.Time
	// APIKeySecret, when set, is the Secret Manager secret jobs read
	// PREFECT_API_KEY from: for a job configuration that sets neither
	// prefect_api_key_secret nor PREFECT_API_KEY in env_from_secrets, the
	// container env gets a secretKeyRef to it and loses the plaintext key
	// (which the dispatcher's own settings otherwise put there). The job's
	// service account needs roles/secretmanager.secretAccessor on it.
	APIKeySecret SecretRef
	// AuthStringSecret is APIKeySecret for PREFECT_API_AUTH_STRING.
	AuthStringSecret SecretRef
}

// SecretRef names a version of a Secret Manager secret, as Cloud Run's
// SecretKeySelector does. The zero value names none.
type SecretRef struct {
	// Secret is the secret's id in the job's project, or
	// projects/PROJECT/secrets/ID for a secret in another project.
	Secret string
	// Version is a version number, an alias, or "latest"; empty means
	// "latest".
	Version string
}

var (
	secretRe        = regexp.MustCompile(`^(projects/[a-z0-9][-a-z0-9.:]*/secrets/)?[A-Za-z0-9_-]{1,255}$`)
	secretVersionRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,63}$`)
)

// ParseSecretRef parses a secret as the environment spells it: ID or
// ID:VERSION, projects/PROJECT/secrets/ID with an optional :VERSION, or
// projects/PROJECT/secrets/ID/versions/VERSION. The empty string is the
// zero SecretRef.
func ParseSecretRef(s string) (SecretRef, error) {
	var r SecretRef
	switch {
	case s == "":
		return r, nil
	case strings.Contains(s, "/versions/"):
		r.Secret, r.Version, _ = strings.Cut(s, "/versions/")
	default:
		r.Secret = s
		if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
			r.Secret, r.Version = s[:i], s[i+1:]
			if r.Version == "" {
				return SecretRef{}, fmt.Errorf("secret %q: the version after the colon is empty (leave out the colon for the latest version)", s)
			}
		}
	}
	if err := r.validate(); err != nil {
		return SecretRef{}, fmt.Errorf("secret %q: %w", s, err)
	}
	return r, nil
}

// IsZero reports whether r names no secret.
func (r SecretRef) IsZero() bool { return r == SecretRef{} }

func (r SecretRef) validate() error {
	if r.IsZero() {
		return nil
	}
	if !secretRe.MatchString(r.Secret) {
		return fmt.Errorf("secret name %q is not a Secret Manager secret id (letters, digits, - and _, at most 255) or projects/PROJECT/secrets/ID; write ID, ID:VERSION, projects/PROJECT/secrets/ID[:VERSION] or projects/PROJECT/secrets/ID/versions/VERSION", r.Secret)
	}
	if r.Version != "" && !secretVersionRe.MatchString(r.Version) {
		return fmt.Errorf("secret version %q is not a version number, an alias or latest", r.Version)
	}
	return nil
}

// selector is r as a SecretKeySelector in the job body; nil for none.
func (r SecretRef) selector() map[string]any {
	if r.IsZero() {
		return nil
	}
	return map[string]any{"secret": r.Secret, "version": firstNonEmpty(r.Version, "latest")}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	for name, d := range map[string]time.Duration{"PollInterval": c.PollInterval, "ReadyTimeout": c.ReadyTimeout, "Backoff": c.Backoff, "MaxBackoff": c.MaxBackoff} {
		if d < 0 {
			return fmt.Errorf("cloud run config: %s must not be negative (got %s)", name, d)
		}
	}
	if c.MaxAttempts < 0 {
		return fmt.Errorf("cloud run config: MaxAttempts must not be negative (got %d)", c.MaxAttempts)
	}
	if err := c.APIKeySecret.validate(); err != nil {
		return fmt.Errorf("cloud run config: APIKeySecret: %w", err)
	}
	if err := c.AuthStringSecret.validate(); err != nil {
		return fmt.Errorf("cloud run config: AuthStringSecret: %w", err)
	}
	return nil
}

func (c *Config) fillDefaults() {
	if c.PollInterval == 0 {
		c.PollInterval = 5 * time.Second
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 5 * time.Minute
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if c.Backoff == 0 {
		c.Backoff = time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Backend starts flow runs as Cloud Run v2 jobs. Close it to release its
// clients.
type Backend struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	clients  map[string]*clients // by credentials key; "" = ClientOptions alone
	projects map[string]string   // project → credentials key last used there
}

type clients struct {
	jobs     *run.JobsClient
	execs    *run.ExecutionsClient
	identity string
}

var _ dispatch.Backend = (*Backend)(nil)

// New returns a Backend. It connects lazily, on the first call that needs a
// client.
func New(cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.fillDefaults()
	return &Backend{cfg: cfg, log: cfg.Logger.With(slog.String("backend", PoolType)),
		clients: map[string]*clients{}, projects: map[string]string{}}, nil
}

// Close closes the Backend's clients.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for k, c := range b.clients {
		errs = append(errs, c.jobs.Close(), c.execs.Close())
		delete(b.clients, k)
	}
	return errors.Join(errs...)
}

// clientsFor returns (creating once) the clients for creds.
func (b *Backend) clientsFor(ctx context.Context, creds credentials) (*clients, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.clients[creds.key()]; ok {
		return c, nil
	}
	var opts []option.ClientOption
	switch {
	case creds.info != nil:
		opts = append(opts, option.WithAuthCredentialsJSON(option.ServiceAccount, creds.info))
	case creds.file != "":
		opts = append(opts, option.WithAuthCredentialsFile(option.ServiceAccount, creds.file))
	}
	opts = append(opts, b.cfg.ClientOptions...)
	// The clients outlive this call; only their creation uses ctx.
	cctx := context.WithoutCancel(ctx)
	jobs, err := run.NewJobsClient(cctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("cloud run: create a jobs client with %s: %w", creds.identity(), err)
	}
	execs, err := run.NewExecutionsClient(cctx, opts...)
	if err != nil {
		jobs.Close()
		return nil, fmt.Errorf("cloud run: create an executions client with %s: %w", creds.identity(), err)
	}
	c := &clients{jobs: jobs, execs: execs, identity: creds.identity()}
	b.clients[creds.key()] = c
	return c, nil
}

// clientsForProject returns the clients a Start last used in project, or
// the default ones.
func (b *Backend) clientsForProject(ctx context.Context, project string) (*clients, error) {
	b.mu.Lock()
	key, ok := b.projects[project]
	c := b.clients[key]
	b.mu.Unlock()
	if ok && c != nil {
		return c, nil
	}
	return b.clientsFor(ctx, credentials{})
}

// retry calls fn until it succeeds, fails with an error that is not
// transient, or has been tried MaxAttempts times, waiting with exponential
// backoff and jitter in between. It returns the last error and the number
// of attempts.
func (b *Backend) retry(ctx context.Context, log *slog.Logger, c call, fn func(context.Context) error) (int, error) {
	delay := b.cfg.Backoff
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || !classify(err).retried() || attempt >= b.cfg.MaxAttempts {
			return attempt, err
		}
		wait := delay/2 + rand.N(delay/2+1)
		log.WarnContext(ctx, "transient Cloud Run error; retrying", slog.String("call", c.verb),
			slog.Int("attempt", attempt), slog.Duration("wait", wait), slog.String("error", err.Error()))
		if err := dispatch.Sleep(ctx, wait); err != nil {
			return attempt, err
		}
		delay = min(2*delay, b.cfg.MaxBackoff)
	}
}

// attemptJob is one attempt's job: its spec, where it lives and who asks.
type attemptJob struct {
	s       *spec
	cl      *clients
	parent  string // projects/P/locations/R
	jobName string // parent/jobs/J
	t       target
	log     *slog.Logger
}

// prepare reads job's configuration for its attempt and picks the clients.
func (b *Backend) prepare(ctx context.Context, job dispatch.Job) (*attemptJob, error) {
	if job.Attempt.IsZero() {
		return nil, fmt.Errorf("cloud run: flow run %s: the job names no attempt (a bug in the caller)", job.FlowRunID)
	}
	s, err := parseSpec(job.Configuration, job.Attempt, b.cfg)
	if err != nil {
		return nil, fmt.Errorf("cloud run: flow run %s: prepare the job from the job configuration of pool %q: %w", job.FlowRunID, job.WorkPool, err)
	}
	cl, err := b.clientsFor(ctx, s.creds)
	if err != nil {
		return nil, fmt.Errorf("cloud run: flow run %s: %w", job.FlowRunID, err)
	}
	b.mu.Lock()
	b.projects[s.project] = s.creds.key()
	b.mu.Unlock()
	parent := fmt.Sprintf("projects/%s/locations/%s", s.project, s.region)
	return &attemptJob{
		s: s, cl: cl, parent: parent, jobName: parent + "/jobs/" + s.name,
		t: target{flowRunID: job.FlowRunID, project: s.project, region: s.region, job: s.name, image: s.image, identity: cl.identity},
		log: b.log.With(slog.String("flow_run_id", job.FlowRunID), slog.String("work_pool", job.WorkPool), slog.String("attempt", job.Attempt.Key()),
			slog.String("job", s.name), slog.String("project", s.project), slog.String("region", s.region)),
	}, nil
}

// Start creates job.Attempt's Cloud Run job with a start_execution_token,
// so that Cloud Run starts its one execution as the job becomes ready, and
// waits until it is ready. A job of the attempt's name that exists already
// (AlreadyExists) is the same attempt started before, by this or another
// dispatcher: Start waits for it instead. It returns the execution's
// resource name.
func (b *Backend) Start(ctx context.Context, job dispatch.Job) (string, error) {
	a, err := b.prepare(ctx, job)
	if err != nil {
		return "", err
	}
	attempts, err := b.retry(ctx, a.log, callCreateJob, func(ctx context.Context) error {
		_, err := a.cl.jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: a.parent, JobId: a.s.name, Job: a.s.job})
		return err
	})
	switch {
	case err == nil:
		a.log.InfoContext(ctx, "created Cloud Run job")
	case classify(err) == kindExists:
		a.log.InfoContext(ctx, "the attempt's Cloud Run job exists already; resuming its start")
	default:
		return "", explain(a.t, callCreateJob, err, attempts)
	}

	j, err := b.waitReady(ctx, a.log, a.cl, a.jobName, a.t)
	if j != nil {
		if oerr := a.owns(j); oerr != nil {
			return "", oerr // never delete another's job
		}
	}
	if err != nil {
		if j != nil && !a.s.keepJob {
			b.deleteUnrun(ctx, a.log, a.cl, a.jobName)
		}
		return "", err
	}
	id := executionOf(j, a.s.token)
	a.log.InfoContext(ctx, "Cloud Run job is ready; its execution started", slog.String("execution", id))
	return id, nil
}

// owns checks that j is the attempt's job and not another's of the same
// name (vanishingly unlikely: the name derives from the flow run and the
// attempt).
func (a *attemptJob) owns(j *runpb.Job) error {
	_, run, _ := sanitizeLabel(LabelFlowRunID, a.t.flowRunID)
	got := j.GetLabels()[LabelFlowRunID]
	attempt, ok := j.GetLabels()[LabelAttempt]
	if got != run || ok && attempt != a.s.attemptLabel {
		return fmt.Errorf("%s: the job belongs to flow run %q attempt %q, not to this one (a job name collision); delete that job or rename this run's job with the name job variable",
			a.t.prefix(callGetJob), got, attempt)
	}
	return nil
}

// waitReady polls the job until its Ready condition succeeds or fails,
// riding out transient errors until the ReadyTimeout or ctx ends. A job
// whose Ready condition failed before it started an execution is returned
// with the error, so the caller can delete it.
func (b *Backend) waitReady(ctx context.Context, log *slog.Logger, cl *clients, jobName string, t target) (*runpb.Job, error) {
	outer := ctx
	ctx, cancel := context.WithTimeout(ctx, b.cfg.ReadyTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	// timeUp is why the wait ended when ctx did, unless a transient error
	// says more.
	timeUp := func() error {
		if outer.Err() != nil {
			return fmt.Errorf("job not ready when the time for the start ran out: %w", context.Cause(outer))
		}
		return fmt.Errorf("job not ready after %s: %w", b.cfg.ReadyTimeout, context.DeadlineExceeded)
	}
	delay := b.cfg.Backoff
	var lastErr error
	attempts := 0
	for {
		attempts++
		j, err := cl.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: jobName})
		wait := b.cfg.PollInterval
		switch k := classify(err); {
		case err == nil:
			c := j.GetTerminalCondition()
			if c.GetType() == "Ready" && c.GetState() == runpb.Condition_CONDITION_SUCCEEDED {
				return j, nil
			}
			if c.GetType() == "Ready" && c.GetState() == runpb.Condition_CONDITION_FAILED {
				if j.GetLatestCreatedExecution().GetName() != "" {
					return j, nil // it started: the execution tells the rest
				}
				if c.GetReason() == runpb.Condition_CONTAINER_MISSING {
					return j, fmt.Errorf("%s: the job's image %q cannot be found (%s); check that the image exists and that Cloud Run's service agent may pull it, or fix the image job variable",
						t.prefix(callCreateJob), t.image, c.GetMessage())
				}
				return j, fmt.Errorf("%s: the job did not become ready: %s (reason %v); fix the job configuration",
					t.prefix(callCreateJob), c.GetMessage(), c.GetReasons())
			}
			log.DebugContext(ctx, "waiting for the Cloud Run job to become ready", slog.String("condition", c.GetState().String()))
			delay = b.cfg.Backoff
		case ctx.Err() != nil || !time.Now().Before(deadline): // the call failed because the wait is over
			if lastErr == nil {
				lastErr = timeUp()
			}
			return nil, explain(t, callGetJob, lastErr, attempts)
		case k == kindTransient || k == kindThrottled || k == kindQuota:
			lastErr = err
			wait = delay/2 + rand.N(delay/2+1)
			delay = min(2*delay, b.cfg.MaxBackoff)
			log.WarnContext(ctx, "transient Cloud Run error while waiting for the job to become ready; still waiting",
				slog.Int("attempt", attempts), slog.String("error", err.Error()))
		default:
			return nil, explain(t, callGetJob, err, attempts)
		}
		if err := dispatch.Sleep(ctx, wait); err != nil {
			if lastErr == nil {
				lastErr = timeUp()
			}
			return nil, explain(t, callGetJob, lastErr, attempts)
		}
	}
}

// deleteUnrun deletes a job that failed to become ready; it has no
// execution.
func (b *Backend) deleteUnrun(ctx context.Context, log *slog.Logger, cl *clients, jobName string) {
	if _, err := cl.jobs.DeleteJob(context.WithoutCancel(ctx), &runpb.DeleteJobRequest{Name: jobName}); err != nil && classify(err) != kindNotFound {
		log.WarnContext(ctx, "could not delete the Cloud Run job that did not become ready", slog.String("error", err.Error()))
	}
}

// executionOf names the execution j's start_execution_token starts:
// <job>-<token>, whether it exists yet or not. When Cloud Run reports the
// job's only execution under another name, that one is it.
func executionOf(j *runpb.Job, token string) string {
	if latest := j.GetLatestCreatedExecution().GetName(); latest != "" && j.GetExecutionCount() == 1 {
		return latest
	}
	return tokenExecution(j.GetName(), token)
}

// tokenExecution is the resource name of the execution a job created with
// token starts.
func tokenExecution(jobName, token string) string {
	return jobName + "/executions/" + jobName[strings.LastIndex(jobName, "/")+1:] + "-" + token
}

// tokenOf is the start_execution_token j was created with, or the attempt
// key its label names when Cloud Run does not return the token.
func tokenOf(j *runpb.Job) string {
	if t := j.GetStartExecutionToken(); t != "" {
		return t
	}
	return attemptOf(j.GetLabels())
}

// Find returns the execution of job.Attempt's job: the one it started, or
// the one it will start when it is not ready yet (Status then reports the
// job's state). found is false when the attempt has no job.
func (b *Backend) Find(ctx context.Context, job dispatch.Job) (string, bool, error) {
	a, err := b.prepare(ctx, job)
	if err != nil {
		return "", false, err
	}
	var j *runpb.Job
	attempts, err := b.retry(ctx, a.log, callGetJob, func(ctx context.Context) error {
		j, err = a.cl.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: a.jobName})
		return err
	})
	switch {
	case classify(err) == kindNotFound:
		return "", false, nil
	case err != nil:
		return "", false, explain(a.t, callGetJob, err, attempts)
	}
	if err := a.owns(j); err != nil {
		a.log.WarnContext(ctx, "the Cloud Run job of the attempt's name is another's; taking it that the attempt started none", slog.String("error", err.Error()))
		return "", false, nil
	}
	return executionOf(j, a.s.token), true, nil
}

// Status reports the execution named by infrastructureID. When the
// execution does not exist but its job does, the job has not started it
// (yet): Status reports the job's Ready condition, EXITED with exit code -1
// when it failed (its message, such as a missing image, is the reason) and
// PENDING otherwise.
func (b *Backend) Status(ctx context.Context, infrastructureID string) (dispatch.Status, error) {
	id, err := ParseExecutionID(infrastructureID)
	if err != nil {
		return dispatch.Status{}, fmt.Errorf("cloud run: status: %w", err)
	}
	cl, err := b.clientsForProject(ctx, id.Project)
	if err != nil {
		return dispatch.Status{}, err
	}
	ex, err := b.getExecution(ctx, cl, id)
	switch {
	case err != nil:
		return dispatch.Status{}, err
	case ex != nil:
		return statusOf(ex), nil
	}
	gone := dispatch.Status{State: dispatch.StateNotFound, ExitCode: -1,
		Reason: fmt.Sprintf("Cloud Run execution %s does not exist (it or its job was deleted)", infrastructureID)}
	j, err := b.getJob(ctx, cl, id)
	switch {
	case err != nil:
		return dispatch.Status{}, err
	case j == nil:
		return gone, nil
	}
	if j.GetLatestCreatedExecution().GetName() == "" {
		return jobStatus(j), nil
	}
	// The job has started an execution since, or Cloud Run named the
	// token's execution otherwise; else this execution is gone.
	eid, err := ParseExecutionID(resolve(j, infrastructureID))
	if err != nil {
		return gone, nil
	}
	switch ex, err = b.getExecution(ctx, cl, eid); {
	case err != nil:
		return dispatch.Status{}, err
	case ex != nil:
		return statusOf(ex), nil
	}
	return gone, nil
}

// resolve returns the execution of job j that infrastructureID names: the
// token's execution by the name Cloud Run gave it when infrastructureID is
// the name the backend expected, infrastructureID itself otherwise.
func resolve(j *runpb.Job, infrastructureID string) string {
	if infrastructureID == tokenExecution(j.GetName(), tokenOf(j)) {
		return executionOf(j, tokenOf(j))
	}
	return infrastructureID
}

// getExecution reads an execution; nil when it does not exist.
func (b *Backend) getExecution(ctx context.Context, cl *clients, id ExecutionID) (*runpb.Execution, error) {
	var ex *runpb.Execution
	attempts, err := b.retry(ctx, b.log, callGetExecution, func(ctx context.Context) (err error) {
		ex, err = cl.execs.GetExecution(ctx, &runpb.GetExecutionRequest{Name: id.String()})
		return err
	})
	switch {
	case classify(err) == kindNotFound:
		return nil, nil
	case err != nil:
		t := target{project: id.Project, region: id.Region, job: id.Job, execution: id.Execution, identity: cl.identity}
		return nil, explain(t, callGetExecution, err, attempts)
	}
	return ex, nil
}

// getJob reads the job of an execution; nil when it does not exist.
func (b *Backend) getJob(ctx context.Context, cl *clients, id ExecutionID) (*runpb.Job, error) {
	var j *runpb.Job
	attempts, err := b.retry(ctx, b.log, callGetJob, func(ctx context.Context) (err error) {
		j, err = cl.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: id.JobResource()})
		return err
	})
	switch {
	case classify(err) == kindNotFound:
		return nil, nil
	case err != nil:
		t := target{project: id.Project, region: id.Region, job: id.Job, identity: cl.identity}
		return nil, explain(t, callGetJob, err, attempts)
	}
	return j, nil
}

// statusOf maps an execution onto a dispatch.Status. Cloud Run reports no
// exit code: success is 0 and anything else 1, as Prefect's worker reports
// it, with the Completed condition's message as the reason.
func statusOf(ex *runpb.Execution) dispatch.Status {
	attempt := attemptOf(ex.GetLabels())
	if ex.GetCompletionTime() == nil {
		if ex.GetRunningCount() > 0 {
			return dispatch.Status{State: dispatch.StateRunning, Attempt: attempt}
		}
		return dispatch.Status{State: dispatch.StatePending, Attempt: attempt}
	}
	st := dispatch.Status{State: dispatch.StateExited, ExitCode: 1, ExitedAt: ex.GetCompletionTime().AsTime(), Attempt: attempt}
	var completed *runpb.Condition
	for _, c := range ex.GetConditions() {
		if c.GetType() == "Completed" {
			completed = c
		}
	}
	switch {
	case completed == nil:
		st.Reason = "the execution completed without a Completed condition"
	case completed.GetState() == runpb.Condition_CONDITION_SUCCEEDED:
		st.ExitCode = 0
	case completed.GetExecutionReason() == runpb.Condition_CANCELLED || ex.GetCancelledCount() > 0:
		st.Reason = "the execution was cancelled"
		if m := completed.GetMessage(); m != "" {
			st.Reason += ": " + m
		}
	default:
		st.Reason = completed.GetMessage()
		if st.Reason == "" {
			st.Reason = "the execution failed (" + completed.GetState().String() + ")"
		}
	}
	return st
}

// jobStatus reports a job that has not started its execution: EXITED with
// exit code -1 when its Ready condition failed, PENDING otherwise, with the
// condition's message as the reason.
func jobStatus(j *runpb.Job) dispatch.Status {
	c := j.GetTerminalCondition()
	short := j.GetName()[strings.LastIndex(j.GetName(), "/")+1:]
	st := dispatch.Status{Attempt: attemptOf(j.GetLabels())}
	msg := c.GetMessage()
	if c.GetState() == runpb.Condition_CONDITION_FAILED {
		st.State, st.ExitCode = dispatch.StateExited, -1
		if msg == "" {
			msg = fmt.Sprintf("reason %v", c.GetReasons())
		}
		st.Reason = fmt.Sprintf("Cloud Run job %s did not become ready and started no execution: %s", short, msg)
		if at := c.GetLastTransitionTime(); at != nil {
			st.ExitedAt = at.AsTime()
		}
		return st
	}
	if msg == "" {
		msg = "Ready is " + c.GetState().String()
	}
	st.State = dispatch.StatePending
	st.Reason = fmt.Sprintf("Cloud Run job %s has not started its execution yet: %s", short, msg)
	return st
}

// attemptOf is the attempt key a LabelAttempt label names, or "".
func attemptOf(labels map[string]string) string {
	v := labels[LabelAttempt]
	if _, key, ok := dispatch.ParseToken(v); ok {
		return key
	}
	if len(v) == dispatch.KeyLen && strings.Trim(v, "0123456789abcdef") == "" {
		return v // a bare key
	}
	return ""
}

// Stop cancels the execution and deletes its job, unless the job carries
// the keep-job label. A job that has not started its execution yet is
// deleted even then, so that it does not start it after all; one that
// failed to become ready and is kept stays. What does not exist any more
// counts as stopped.
func (b *Backend) Stop(ctx context.Context, infrastructureID string) error {
	id, err := ParseExecutionID(infrastructureID)
	if err != nil {
		return fmt.Errorf("cloud run: stop: %w", err)
	}
	cl, err := b.clientsForProject(ctx, id.Project)
	if err != nil {
		return err
	}
	log := b.log.With(slog.String("execution", infrastructureID))
	j, err := b.getJob(ctx, cl, id)
	switch {
	case err != nil:
		return err
	case j == nil:
		return nil // deleting a job deletes its executions
	}
	keep := j.GetLabels()[LabelKeepJob] == "true"
	if j.GetLatestCreatedExecution().GetName() != "" {
		name := resolve(j, infrastructureID)
		t := target{project: id.Project, region: id.Region, job: id.Job, execution: name[strings.LastIndex(name, "/")+1:], identity: cl.identity}
		attempts, err := b.retry(ctx, log, callCancelExecution, func(ctx context.Context) error {
			_, err := cl.execs.CancelExecution(ctx, &runpb.CancelExecutionRequest{Name: name})
			return err
		})
		switch k := classify(err); {
		case err == nil:
			log.InfoContext(ctx, "cancelled Cloud Run execution")
		case k == kindNotFound, k == kindInvalid: // gone, or already completed
		default:
			return explain(t, callCancelExecution, err, attempts)
		}
		if keep {
			return nil
		}
	} else if keep && j.GetTerminalCondition().GetState() == runpb.Condition_CONDITION_FAILED {
		return nil
	}
	jt := target{project: id.Project, region: id.Region, job: id.Job, identity: cl.identity}
	attempts, err := b.retry(ctx, log, callDeleteJob, func(ctx context.Context) error {
		_, err := cl.jobs.DeleteJob(ctx, &runpb.DeleteJobRequest{Name: id.JobResource()})
		return err
	})
	switch k := classify(err); {
	case err == nil:
		log.InfoContext(ctx, "deleted Cloud Run job")
	case k == kindNotFound:
	case k == kindInvalid:
		log.WarnContext(ctx, "Cloud Run refused to delete the job yet; the sweep will", slog.String("error", err.Error()))
	default:
		return explain(jt, callDeleteJob, err, attempts)
	}
	return nil
}

// Sweep deletes the jobs pushpool created in project and region (label
// pushpool-io-managed) that are not keep_job and whose executions all
// completed more than olderThan ago. There is one job per attempt, so a run
// that ran again leaves one job per attempt, each swept on its own. A job
// that never started its execution (it failed to become ready, or its
// Start was cut off) counts from its creation, so olderThan must exceed how
// long a Start can take (ReadyTimeout). Jobs with a running execution are
// never deleted: that would SIGTERM the flow (PrefectHQ/prefect#23025). It
// returns how many jobs it deleted; errors about single jobs are joined and
// do not stop the sweep.
func (b *Backend) Sweep(ctx context.Context, project, region string, olderThan time.Duration) (int, error) {
	if project == "" {
		project = b.cfg.Project
	}
	if project == "" || region == "" {
		return 0, fmt.Errorf("cloud run: sweep: need a project and a region (got %q, %q)", project, region)
	}
	cl, err := b.clientsForProject(ctx, project)
	if err != nil {
		return 0, err
	}
	parent := fmt.Sprintf("projects/%s/locations/%s", project, region)
	now := b.cfg.Now()
	deleted := 0
	var errs []error
	it := cl.jobs.ListJobs(ctx, &runpb.ListJobsRequest{Parent: parent})
	for {
		j, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			t := target{project: project, region: region, job: "(all)", identity: cl.identity}
			return deleted, errors.Join(append(errs, explain(t, callListJobs, err, 1))...)
		}
		labels := j.GetLabels()
		if labels[LabelManaged] != "true" || labels[LabelKeepJob] == "true" {
			continue
		}
		short := j.GetName()[len(parent)+len("/jobs/"):]
		t := target{project: project, region: region, job: short, identity: cl.identity}
		done, err := b.finishedBefore(ctx, cl, j, now.Add(-olderThan))
		if err != nil {
			errs = append(errs, explain(t, callListExecutions, err, 1))
			continue
		}
		if !done {
			continue
		}
		if _, err := cl.jobs.DeleteJob(ctx, &runpb.DeleteJobRequest{Name: j.GetName()}); err != nil && classify(err) != kindNotFound {
			errs = append(errs, explain(t, callDeleteJob, err, 1))
			continue
		}
		b.log.InfoContext(ctx, "swept finished Cloud Run job", slog.String("job", j.GetName()))
		deleted++
	}
	return deleted, errors.Join(errs...)
}

// finishedBefore reports whether every execution of j completed before
// cutoff (or, for a job that never ran, whether it was created before it).
// A job whose latest execution runs is not listed.
func (b *Backend) finishedBefore(ctx context.Context, cl *clients, j *runpb.Job, cutoff time.Time) (bool, error) {
	if l := j.GetLatestCreatedExecution(); l.GetName() != "" && l.GetCompletionTime() == nil {
		return false, nil
	}
	var last time.Time
	it := cl.execs.ListExecutions(ctx, &runpb.ListExecutionsRequest{Parent: j.GetName()})
	for {
		ex, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			return false, err
		}
		if ex.GetCompletionTime() == nil {
			return false, nil
		}
		if c := ex.GetCompletionTime().AsTime(); c.After(last) {
			last = c
		}
	}
	if last.IsZero() {
		last = j.GetCreateTime().AsTime() // never ran
	}
	return last.Before(cutoff), nil
}
