// Package cloudrun runs flow runs as Cloud Run v2 jobs, the way Prefect's
// cloud-run-v2 worker (prefect-gcp) does: it prepares the job body from the
// pool's job configuration exactly as the worker does, creates the job,
// waits until it is ready and runs it once.
//
// Differences from the worker, and why:
//
//   - Job names are deterministic: the slug of the configuration's name and
//     12 hex digits of the flow run id (the worker adds 7 random ones), so a
//     retried Submit finds the job and execution the first one started.
//     Submit runs the job only when it has no execution yet, and after a
//     transient error from RunJob looks again before retrying.
//   - The infrastructure id is the execution's full resource name
//     projects/P/locations/R/jobs/J/executions/E. The worker records the
//     bare job name, which cannot be located again without the job
//     configuration (project, region) that Status and Stop do not get. A bare
//     job name is refused with an error saying so.
//   - Submit returns once the execution exists; nothing waits for it to end.
//     Status reports it, and never deletes anything.
//   - Finished jobs are deleted by Sweep (from the reconcile pass), not right
//     after completion, and only once their execution has completed:
//     deleting a running execution SIGTERMs the flow (PrefectHQ/prefect#23025).
//     Jobs pushpool creates carry the label pushpool-io-managed=true, and
//     pushpool-io-keep-job=true when keep_job is set.
//   - Transient errors (503, 429 throttling) are retried with backoff on
//     every call; the readiness poll keeps polling through them until its
//     deadline (PrefectHQ/prefect#22085). Errors that persist wrap
//     dispatch.ErrRetryable so the run is rescheduled, not crashed.
//   - Stop cancels the execution and deletes the job (only cancels when
//     keep_job); the worker deletes the job.
//   - The container env is sorted by name (Go maps have no order).
package cloudrun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
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
	// use when no Submit of this Backend used other credentials there.
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

// clientsForProject returns the clients a Submit last used in project, or
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
		if err := sleep(ctx, wait); err != nil {
			return attempt, err
		}
		delay = min(2*delay, b.cfg.MaxBackoff)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// Submit creates the flow run's job (or finds it), waits until it is
// ready and runs it unless it already has an execution. It returns the
// execution's resource name.
func (b *Backend) Submit(ctx context.Context, job dispatch.Job) (string, error) {
	s, err := parseSpec(job.Configuration, job.FlowRunID, b.cfg.Project)
	if err != nil {
		return "", fmt.Errorf("cloud run: flow run %s: prepare the job from the job configuration of pool %q: %w", job.FlowRunID, job.WorkPool, err)
	}
	log := b.log.With(slog.String("flow_run_id", job.FlowRunID), slog.String("work_pool", job.WorkPool),
		slog.String("job", s.name), slog.String("project", s.project), slog.String("region", s.region))
	cl, err := b.clientsFor(ctx, s.creds)
	if err != nil {
		return "", fmt.Errorf("cloud run: flow run %s: %w", job.FlowRunID, err)
	}
	b.mu.Lock()
	b.projects[s.project] = s.creds.key()
	b.mu.Unlock()

	parent := fmt.Sprintf("projects/%s/locations/%s", s.project, s.region)
	jobName := parent + "/jobs/" + s.name
	t := target{flowRunID: job.FlowRunID, project: s.project, region: s.region, job: s.name, image: s.image, identity: cl.identity}

	attempts, err := b.retry(ctx, log, callCreateJob, func(ctx context.Context) error {
		_, err := cl.jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: parent, JobId: s.name, Job: s.job})
		return err
	})
	switch {
	case err == nil:
		log.InfoContext(ctx, "created Cloud Run job")
	case classify(err) == kindExists:
		log.InfoContext(ctx, "Cloud Run job exists already; resuming its submission")
	default:
		return "", explain(t, callCreateJob, err, attempts)
	}

	j, err := b.waitReady(ctx, log, cl, jobName, t)
	if err != nil {
		if !errors.Is(err, dispatch.ErrRetryable) && !s.keepJob {
			b.deleteUnrun(ctx, log, cl, jobName)
		}
		return "", err
	}
	if got := j.GetLabels()[LabelFlowRunID]; got != job.FlowRunID {
		return "", fmt.Errorf("cloud run: flow run %s: job %s in project %s region %s belongs to flow run %q, not this one (a job name collision); delete that job or rename this run's job with the name job variable", job.FlowRunID, s.name, s.project, s.region, got)
	}

	if name, err := b.latestExecution(ctx, log, cl, jobName, t); err != nil {
		return "", err
	} else if name != "" {
		log.InfoContext(ctx, "Cloud Run job already has an execution; not running it again", slog.String("execution", name))
		return name, nil
	}
	return b.runOnce(ctx, log, cl, jobName, t)
}

// waitReady polls the job until its Ready condition succeeds or fails,
// riding out transient errors until the ReadyTimeout or ctx ends.
func (b *Backend) waitReady(ctx context.Context, log *slog.Logger, cl *clients, jobName string, t target) (*runpb.Job, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.ReadyTimeout)
	defer cancel()
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
				if c.GetReason() == runpb.Condition_CONTAINER_MISSING {
					return nil, fmt.Errorf("%s: the job's image %q cannot be found (%s); check that the image exists and that Cloud Run's service agent may pull it, or fix the image job variable",
						t.prefix(callCreateJob), t.image, c.GetMessage())
				}
				return nil, fmt.Errorf("%s: the job did not become ready: %s (reason %v); fix the job configuration",
					t.prefix(callCreateJob), c.GetMessage(), c.GetReasons())
			}
			log.DebugContext(ctx, "waiting for the Cloud Run job to become ready", slog.String("condition", c.GetState().String()))
			delay = b.cfg.Backoff
		case k == kindTransient || k == kindThrottled || k == kindQuota:
			lastErr = err
			wait = delay/2 + rand.N(delay/2+1)
			delay = min(2*delay, b.cfg.MaxBackoff)
			log.WarnContext(ctx, "transient Cloud Run error while waiting for the job to become ready; still waiting",
				slog.Int("attempt", attempts), slog.String("error", err.Error()))
		case k == kindContext && lastErr != nil:
			return nil, explain(t, callGetJob, lastErr, attempts)
		default:
			return nil, explain(t, callGetJob, err, attempts)
		}
		if err := sleep(ctx, wait); err != nil {
			if lastErr == nil {
				lastErr = fmt.Errorf("job not ready after %s: %w", b.cfg.ReadyTimeout, err)
			}
			return nil, explain(t, callGetJob, lastErr, attempts)
		}
	}
}

// deleteUnrun deletes a job that never became ready; it has no execution.
func (b *Backend) deleteUnrun(ctx context.Context, log *slog.Logger, cl *clients, jobName string) {
	if _, err := cl.jobs.DeleteJob(context.WithoutCancel(ctx), &runpb.DeleteJobRequest{Name: jobName}); err != nil && classify(err) != kindNotFound {
		log.WarnContext(ctx, "could not delete the Cloud Run job that did not become ready", slog.String("error", err.Error()))
	}
}

// latestExecution returns the name of the job's newest execution, or "".
func (b *Backend) latestExecution(ctx context.Context, log *slog.Logger, cl *clients, jobName string, t target) (string, error) {
	var name string
	attempts, err := b.retry(ctx, log, callListExecutions, func(ctx context.Context) error {
		resp, err := cl.execs.ListExecutions(ctx, &runpb.ListExecutionsRequest{Parent: jobName, PageSize: 1}).Next()
		switch {
		case err == iterator.Done:
			name = ""
			return nil
		case err != nil:
			return err
		}
		name = resp.GetName()
		return nil
	})
	if err != nil {
		return "", explain(t, callListExecutions, err, attempts)
	}
	return name, nil
}

// runOnce runs the job. After a transient error it looks for an execution
// the failed call may have started before it tries again, so the job never
// runs twice.
func (b *Backend) runOnce(ctx context.Context, log *slog.Logger, cl *clients, jobName string, t target) (string, error) {
	delay := b.cfg.Backoff
	for attempt := 1; ; attempt++ {
		op, err := cl.jobs.RunJob(ctx, &runpb.RunJobRequest{Name: jobName})
		if err == nil {
			if md, merr := op.Metadata(); merr == nil && md.GetName() != "" {
				log.InfoContext(ctx, "started Cloud Run execution", slog.String("execution", md.GetName()))
				return md.GetName(), nil
			}
			name, err := b.latestExecution(ctx, log, cl, jobName, t)
			if err != nil || name != "" {
				return name, err
			}
			return "", fmt.Errorf("%s: Cloud Run accepted the run but shows no execution; submit the run again", t.prefix(callRunJob))
		}
		if !classify(err).retried() {
			return "", explain(t, callRunJob, err, attempt)
		}
		name, lerr := b.latestExecution(ctx, log, cl, jobName, t)
		if lerr != nil {
			// Cannot tell whether the failed call started one: stop here;
			// the next Submit looks first.
			return "", explain(t, callRunJob, err, attempt)
		}
		if name != "" {
			log.WarnContext(ctx, "RunJob failed but started an execution; using it", slog.String("execution", name), slog.String("error", err.Error()))
			return name, nil
		}
		if attempt >= b.cfg.MaxAttempts {
			return "", explain(t, callRunJob, err, attempt)
		}
		wait := delay/2 + rand.N(delay/2+1)
		log.WarnContext(ctx, "transient Cloud Run error; retrying", slog.String("call", callRunJob.verb), slog.Int("attempt", attempt), slog.String("error", err.Error()))
		if serr := sleep(ctx, wait); serr != nil {
			return "", explain(t, callRunJob, err, attempt)
		}
		delay = min(2*delay, b.cfg.MaxBackoff)
	}
}

// Status reports the execution named by infrastructureID.
func (b *Backend) Status(ctx context.Context, infrastructureID string) (dispatch.Status, error) {
	id, err := ParseExecutionID(infrastructureID)
	if err != nil {
		return dispatch.Status{}, fmt.Errorf("cloud run: status: %w", err)
	}
	cl, err := b.clientsForProject(ctx, id.Project)
	if err != nil {
		return dispatch.Status{}, err
	}
	t := target{project: id.Project, region: id.Region, job: id.Job, execution: id.Execution, identity: cl.identity}
	var ex *runpb.Execution
	attempts, err := b.retry(ctx, b.log, callGetExecution, func(ctx context.Context) error {
		ex, err = cl.execs.GetExecution(ctx, &runpb.GetExecutionRequest{Name: infrastructureID})
		return err
	})
	switch {
	case classify(err) == kindNotFound:
		return dispatch.Status{State: dispatch.StateNotFound, ExitCode: -1,
			Reason: fmt.Sprintf("Cloud Run execution %s does not exist (it or its job was deleted)", infrastructureID)}, nil
	case err != nil:
		return dispatch.Status{}, explain(t, callGetExecution, err, attempts)
	}
	return statusOf(ex), nil
}

// statusOf maps an execution onto a dispatch.Status. Cloud Run reports no
// exit code: success is 0 and anything else 1, as Prefect's worker reports
// it, with the Completed condition's message as the reason.
func statusOf(ex *runpb.Execution) dispatch.Status {
	if ex.GetCompletionTime() == nil {
		if ex.GetRunningCount() > 0 {
			return dispatch.Status{State: dispatch.StateRunning}
		}
		return dispatch.Status{State: dispatch.StatePending}
	}
	st := dispatch.Status{State: dispatch.StateExited, ExitCode: 1, ExitedAt: ex.GetCompletionTime().AsTime()}
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

// Stop cancels the execution and deletes its job, unless the job carries
// the keep-job label. What does not exist any more counts as stopped.
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
	t := target{project: id.Project, region: id.Region, job: id.Job, execution: id.Execution, identity: cl.identity}
	attempts, err := b.retry(ctx, log, callCancelExecution, func(ctx context.Context) error {
		_, err := cl.execs.CancelExecution(ctx, &runpb.CancelExecutionRequest{Name: infrastructureID})
		return err
	})
	switch k := classify(err); {
	case err == nil:
		log.InfoContext(ctx, "cancelled Cloud Run execution")
	case k == kindNotFound, k == kindInvalid: // gone, or already completed
	default:
		return explain(t, callCancelExecution, err, attempts)
	}
	jt := target{project: id.Project, region: id.Region, job: id.Job, identity: cl.identity}
	var j *runpb.Job
	attempts, err = b.retry(ctx, log, callGetJob, func(ctx context.Context) error {
		j, err = cl.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: id.JobResource()})
		return err
	})
	switch {
	case classify(err) == kindNotFound:
		return nil
	case err != nil:
		return explain(jt, callGetJob, err, attempts)
	case j.GetLabels()[LabelKeepJob] == "true":
		return nil
	}
	attempts, err = b.retry(ctx, log, callDeleteJob, func(ctx context.Context) error {
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
// completed more than olderThan ago; a job that never ran counts from its
// creation, so olderThan must exceed how long a submission can take. Jobs
// with a running execution are never deleted: that would SIGTERM the flow
// (PrefectHQ/prefect#23025). It returns how many jobs it deleted; errors
// about single jobs are joined and do not stop the sweep.
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
func (b *Backend) finishedBefore(ctx context.Context, cl *clients, j *runpb.Job, cutoff time.Time) (bool, error) {
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
