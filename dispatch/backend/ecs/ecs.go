// Package ecs is pushpool's backend for Prefect's ECS work pools (types
// "ecs" and "ecs:push"): it builds and registers the task definition and
// runs the task as prefect-aws's ECSWorker does, and reports and stops tasks
// by the infrastructure_pid the worker records, "<cluster>::<task ARN>".
//
// Tasks are per attempt (dispatch.Attempt): the attempt's Token, "<flow run
// id>-<key>", is the task's startedBy, RunTask's clientToken and the value
// of its pushpool.io/attempt tag. ECS answers a repeated clientToken with
// the task it started first, so starting an attempt twice, one start after
// another or at the same time, starts one task; a flow run that is run
// again (Retry, resume, reschedule) is a new attempt with a new token and
// gets a new task, even while the first task is still listed. Find looks an
// attempt's task up by its startedBy; Status reports the attempt its
// startedBy names.
//
// Credentials: Start and Find use the job configuration's aws_credentials
// block when it holds keys or a profile (region from region_name, else the
// backend's), otherwise the backend's own configuration (the default AWS
// credential chain). Status and Stop only get the infrastructure id, so they
// always use the backend's own credentials, in the region named by the task
// ARN: a dispatcher observing runs started with a block's credentials needs
// ecs:DescribeTasks and ecs:StopTask in that account itself.
package ecs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pushpool/pushpool/dispatch"
	"golang.org/x/sync/singleflight"
)

// Config configures a Backend. The zero value uses the default AWS
// configuration (environment, shared config, instance role).
type Config struct {
	// AWS is the AWS configuration; a zero Region and Credentials mean
	// config.LoadDefaultConfig.
	AWS aws.Config
	// Endpoint overrides the ECS and EC2 endpoints (tests point it at moto).
	Endpoint string
	// DefaultImage is the image of the orchestration container when the task
	// definition names none. Empty means Prefect's image for the Prefect
	// version pushpool matches, as the worker's get_prefect_image_name.
	DefaultImage string
	// MaxAttempts is how many times the AWS client tries a throttled or
	// failed call. Zero means 5.
	MaxAttempts int
	// MaxBackoff caps the AWS client's backoff between attempts. Zero means
	// 20 seconds.
	MaxBackoff time.Duration
	// RegisterBackoff is the first wait before retrying a task definition
	// registration that ECS refused with "Too many concurrent attempts";
	// it doubles up to 10 s over RegisterAttempts. Zero means 1 s.
	RegisterBackoff time.Duration
	// RegisterAttempts bounds those registrations. Zero means 5.
	RegisterAttempts int
	// RevisionScan is how many of a family's newest ACTIVE revisions are
	// inspected for a reusable one. Zero means 10.
	RevisionScan int
	// SubnetTTL is how long the subnets of a VPC, looked up for jobs without
	// a network configuration, are reused before EC2 is asked again. A
	// RunTask that ECS refuses for its subnets forgets them at once. Zero
	// means 10 minutes; negative means no reuse.
	SubnetTTL time.Duration
	// Logger receives the backend's logs. Nil discards them.
	Logger *slog.Logger
}

// DefaultImage is Prefect's image for the Prefect release pushpool matches.
const DefaultImage = "prefecthq/prefect:3.9.1-python3.12"

func (c *Config) fillDefaults() {
	if c.DefaultImage == "" {
		c.DefaultImage = DefaultImage
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 20 * time.Second
	}
	if c.RegisterBackoff == 0 {
		c.RegisterBackoff = time.Second
	}
	if c.RegisterAttempts == 0 {
		c.RegisterAttempts = 5
	}
	if c.RevisionScan == 0 {
		c.RevisionScan = 10
	}
	if c.SubnetTTL == 0 {
		c.SubnetTTL = 10 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first field out of its range.
func (c Config) Validate() error {
	switch {
	case c.MaxAttempts < 0:
		return errors.New("ecs config: MaxAttempts must not be negative")
	case c.MaxBackoff < 0 || c.RegisterBackoff < 0:
		return errors.New("ecs config: MaxBackoff and RegisterBackoff must not be negative")
	case c.RegisterAttempts < 0 || c.RevisionScan < 0:
		return errors.New("ecs config: RegisterAttempts and RevisionScan must not be negative")
	case c.RevisionScan > 100:
		return errors.New("ecs config: RevisionScan must be at most 100 (one ListTaskDefinitions page)")
	}
	return nil
}

// ecsAPI is the part of the ECS client the backend uses.
type ecsAPI interface {
	RegisterTaskDefinition(context.Context, *ecs.RegisterTaskDefinitionInput, ...func(*ecs.Options)) (*ecs.RegisterTaskDefinitionOutput, error)
	DescribeTaskDefinition(context.Context, *ecs.DescribeTaskDefinitionInput, ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error)
	ListTaskDefinitions(context.Context, *ecs.ListTaskDefinitionsInput, ...func(*ecs.Options)) (*ecs.ListTaskDefinitionsOutput, error)
	RunTask(context.Context, *ecs.RunTaskInput, ...func(*ecs.Options)) (*ecs.RunTaskOutput, error)
	ListTasks(context.Context, *ecs.ListTasksInput, ...func(*ecs.Options)) (*ecs.ListTasksOutput, error)
	DescribeTasks(context.Context, *ecs.DescribeTasksInput, ...func(*ecs.Options)) (*ecs.DescribeTasksOutput, error)
	StopTask(context.Context, *ecs.StopTaskInput, ...func(*ecs.Options)) (*ecs.StopTaskOutput, error)
}

// ec2API is the part of the EC2 client the backend uses.
type ec2API interface {
	DescribeVpcs(context.Context, *ec2.DescribeVpcsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error)
	DescribeSubnets(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
}

// Backend runs flow runs as ECS tasks. It is safe for concurrent use. Its
// state is what saves AWS calls — the task definition revisions it used,
// task definitions it described, VPC subnets, the attempts it started —
// and per-family registration locks; none of it is needed for
// correctness, so several Backends (in several processes) may serve the
// same pools.
type Backend struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	mu        sync.Mutex
	families  map[string]chan struct{}        // per-family registration locks
	known     map[revisionKey]string          // content of a family -> task definition ARN
	described map[describedKey]map[string]any // task definition revision ARN -> its definition
	subnets   map[subnetKey]subnetEntry       // VPC -> its subnets
	attempts  map[attemptKey]*attemptMemory   // attempts this Backend started or tried
	regional  map[string]ecsAPI               // the backend's own ECS clients by region

	// lookups lets concurrent Starts that miss the same remembered revision
	// or subnets share one lookup, instead of a burst of runs each sending
	// its own before the first answer is remembered.
	lookups singleflight.Group
}

var _ dispatch.Backend = (*Backend)(nil)

// New returns a Backend. With a zero cfg.AWS it loads the default AWS
// configuration.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.fillDefaults()
	if cfg.AWS.Region == "" && cfg.AWS.Credentials == nil {
		loaded, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("load the default AWS configuration for the ECS backend (set AWS_REGION and credentials): %w", err)
		}
		cfg.AWS = loaded
	}
	b := &Backend{
		cfg: cfg, log: cfg.Logger.With(slog.String("backend", "ecs")),
		now:      time.Now,
		families: map[string]chan struct{}{}, known: map[revisionKey]string{}, described: map[describedKey]map[string]any{},
		subnets: map[subnetKey]subnetEntry{}, attempts: map[attemptKey]*attemptMemory{}, regional: map[string]ecsAPI{},
	}
	return b, nil
}

// awsConfigFor returns the AWS configuration for a job: its aws_credentials
// block when that holds keys or a profile, else the backend's own; the
// block's region_name overrides the region either way.
func (b *Backend) awsConfigFor(ctx context.Context, block map[string]any) (aws.Config, error) {
	cfg := b.cfg.AWS.Copy()
	key, secret := asString(block["aws_access_key_id"]), asString(block["aws_secret_access_key"])
	profile := asString(block["profile_name"])
	switch {
	case key != "" && secret != "":
		cfg.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(key, secret, asString(block["aws_session_token"])))
	case profile != "":
		loaded, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithSharedConfigProfile(profile))
		if err != nil {
			return cfg, fmt.Errorf("load AWS profile %q of the aws_credentials block: %w", profile, err)
		}
		cfg.Credentials = loaded.Credentials
		if loaded.Region != "" {
			cfg.Region = loaded.Region
		}
	}
	if r := asString(block["region_name"]); r != "" {
		cfg.Region = r
	}
	return cfg, nil
}

func (b *Backend) retryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = b.cfg.MaxAttempts
		o.MaxBackoff = b.cfg.MaxBackoff
		// No client-side retry quota: a dispatcher retrying throttled calls
		// of many runs at once must not fail them without asking AWS.
		o.RateLimiter = ratelimit.None
	})
}

func (b *Backend) ecsClient(cfg aws.Config) *ecs.Client {
	return ecs.NewFromConfig(cfg, func(o *ecs.Options) {
		o.Retryer = b.retryer()
		if b.cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(b.cfg.Endpoint)
		}
	})
}

func (b *Backend) ec2Client(cfg aws.Config) *ec2.Client {
	return ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		o.Retryer = b.retryer()
		if b.cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(b.cfg.Endpoint)
		}
	})
}

// ownECS returns the backend's own ECS client for region.
func (b *Backend) ownECS(region string) ecsAPI {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.regional[region]; ok {
		return c
	}
	cfg := b.cfg.AWS.Copy()
	if region != "" {
		cfg.Region = region
	}
	c := b.ecsClient(cfg)
	b.regional[region] = c
	return c
}

// lockFamily serialises registrations in one task definition family within
// this process, so concurrent runs of a deployment register at most one
// revision ("Too many concurrent attempts" otherwise). It honours ctx.
func (b *Backend) lockFamily(ctx context.Context, family string) (unlock func(), err error) {
	b.mu.Lock()
	ch, ok := b.families[family]
	if !ok {
		ch = make(chan struct{}, 1)
		b.families[family] = ch
	}
	b.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for another registration in task definition family %s: %w", family, context.Cause(ctx))
	}
}

// sleep waits d with up to 50% jitter, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	return dispatch.Sleep(ctx, d+time.Duration(rand.Int64N(int64(d)/2+1)))
}
