// Package cloudrunfake is an in-process fake of the Cloud Run Admin API v2
// (jobs, executions and their long-running operations) served over gRPC on
// 127.0.0.1 with the real runpb and longrunningpb types, so the real
// cloud.google.com/go/run/apiv2 clients can be tested against it. No fake
// ships with the library; this one implements only what pushpool's Cloud Run
// backend calls, with the semantics the real service documents: jobs are
// created through an operation and become Ready, a job created with a
// start_execution_token starts its execution <job>-<token> as it becomes
// Ready, running a job starts an execution, names follow Cloud Run's rules,
// an existing name is AlreadyExists and missing resources are NotFound. Its
// Go methods are the test controls: finish or forget an execution, inject
// gRPC errors, count what exists.
package cloudrunfake

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	addr string
	grpc *grpc.Server

	mu            sync.Mutex
	jobs          map[string]*runpb.Job       // full job name → job
	executions    map[string]*runpb.Execution // full execution name → execution
	ops           map[string]opRef
	faults        map[string][]*fault // method → pending faults, in order
	calls         map[string]int
	missingImages map[string]string // image → message
	readyAfter    int               // GetJob calls a new job stays reconciling
	readyPolls    map[string]int
	killed        []string // executions deleted while they ran
}

type opRef struct {
	kind   string // "job" or "execution"
	target string
	err    *status.Status
}

type fault struct {
	st    *status.Status
	times int  // < 0: forever
	after bool // the call takes effect before the error is returned
}

// Start starts a fake listening on 127.0.0.1 at a free port. Stop it with
// Stop.
func Start() (*Server, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cloudrunfake: listen on 127.0.0.1: %w", err)
	}
	s := &Server{
		addr:          lis.Addr().String(),
		jobs:          map[string]*runpb.Job{},
		executions:    map[string]*runpb.Execution{},
		ops:           map[string]opRef{},
		faults:        map[string][]*fault{},
		calls:         map[string]int{},
		missingImages: map[string]string{},
		readyPolls:    map[string]int{},
	}
	s.grpc = grpc.NewServer(grpc.UnaryInterceptor(s.intercept))
	runpb.RegisterJobsServer(s.grpc, jobsServer{s: s})
	runpb.RegisterExecutionsServer(s.grpc, executionsServer{s: s})
	longrunningpb.RegisterOperationsServer(s.grpc, operationsServer{s: s})
	go s.grpc.Serve(lis) //nolint:errcheck // Serve returns when Stop closes the listener.
	return s, nil
}

// Addr is the host:port the fake listens on.
func (s *Server) Addr() string { return s.addr }

// Stop stops the fake, ending calls in flight.
func (s *Server) Stop() { s.grpc.Stop() }

// intercept counts calls and answers with an injected fault when one is due.
func (s *Server) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	method := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
	s.mu.Lock()
	s.calls[method]++
	var injected *status.Status
	after := false
	if q := s.faults[method]; len(q) > 0 {
		f := q[0]
		injected, after = f.st, f.after
		if f.times > 0 {
			f.times--
			if f.times == 0 {
				s.faults[method] = q[1:]
			}
		}
	}
	s.mu.Unlock()
	if injected == nil {
		return handler(ctx, req)
	}
	if after {
		handler(ctx, req) //nolint:errcheck // the caller sees the injected error either way
	}
	return nil, injected.Err()
}

// ---- test controls ----

// Inject makes the next `times` calls of method (a short gRPC method name
// such as "CreateJob" or "GetJob") fail with st; times < 0 means every call
// until Clear. Faults for one method queue up in order.
func (s *Server) Inject(method string, st *status.Status, times int) {
	if times == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = append(s.faults[method], &fault{st: st, times: times})
}

// InjectAfter is Inject for a call that takes effect on the server but
// still fails for the caller (a response lost to a 503): the method runs,
// then the caller gets st.
func (s *Server) InjectAfter(method string, st *status.Status, times int) {
	if times == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = append(s.faults[method], &fault{st: st, times: times, after: true})
}

// Clear removes every pending injected fault.
func (s *Server) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string][]*fault{}
}

// Throttled is the status Cloud Run answers a caller over its request rate
// limit with: ResourceExhausted with an ErrorInfo of reason
// RATE_LIMIT_EXCEEDED.
func Throttled(method string) *status.Status {
	st, _ := status.New(codes.ResourceExhausted, fmt.Sprintf("Quota exceeded for quota metric 'Job %s requests' and limit 'Job %s requests per minute per region' of service 'run.googleapis.com'.", method, method)).
		WithDetails(&errdetails.ErrorInfo{Reason: "RATE_LIMIT_EXCEEDED", Domain: "googleapis.com",
			Metadata: map[string]string{"service": "run.googleapis.com", "quota_metric": "run.googleapis.com/" + strings.ToLower(method) + "_requests"}})
	return st
}

// QuotaExceeded is the status for an exhausted allocation quota such as the
// 1000 jobs per region: ResourceExhausted with a QuotaFailure naming it.
func QuotaExceeded(project, quota, description string) *status.Status {
	st, _ := status.New(codes.ResourceExhausted, fmt.Sprintf("Quota exceeded for quota %s in project %s: %s", quota, project, description)).
		WithDetails(&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{
			Subject: "projects/" + project, Description: description, QuotaId: quota}}})
	return st
}

// PermissionDenied is the status IAM gives a caller lacking permission on
// resource: PermissionDenied with an ErrorInfo of reason
// IAM_PERMISSION_DENIED naming the permission.
func PermissionDenied(permission, resource string) *status.Status {
	st, _ := status.New(codes.PermissionDenied, fmt.Sprintf("Permission '%s' denied on resource '%s' (or it may not exist).", permission, resource)).
		WithDetails(&errdetails.ErrorInfo{Reason: "IAM_PERMISSION_DENIED", Domain: "run.googleapis.com",
			Metadata: map[string]string{"permission": permission, "resource": resource}})
	return st
}

// ImageNotFound is the status Cloud Run rejects a job whose image cannot be
// found with: FailedPrecondition, with a BadRequest field violation on the
// container image.
func ImageNotFound(image string) *status.Status {
	st, _ := status.New(codes.FailedPrecondition, imageMessage(image)).
		WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{
			Field: "job.template.template.containers[0].image", Description: imageMessage(image)}}})
	return st
}

func imageMessage(image string) string {
	return fmt.Sprintf("Image '%s' not found.", image)
}

// SetImageMissing makes jobs created with image fail to become ready, as
// Cloud Run reports an image it cannot resolve: the create operation ends
// in FailedPrecondition and the job's terminal condition is Ready /
// CONDITION_FAILED with reason CONTAINER_MISSING.
func (s *Server) SetImageMissing(image string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.missingImages[image] = imageMessage(image)
}

// SetReadyAfter makes each new job report a reconciling Ready condition to
// its first n GetJob calls before it becomes ready.
func (s *Server) SetReadyAfter(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readyAfter = n
}

// Calls reports how many times method was called, injected faults included.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// CompleteExecution finishes the execution named name (its full resource
// name): succeeded, or failed with message as the Completed condition's
// message, as Cloud Run reports a task that exited non-zero.
func (s *Server) CompleteExecution(name string, succeeded bool, message string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ex, ok := s.executions[name]
	if !ok {
		return fmt.Errorf("cloudrunfake: no execution %s", name)
	}
	if ex.CompletionTime != nil {
		return fmt.Errorf("cloudrunfake: execution %s already completed", name)
	}
	c := &runpb.Condition{Type: "Completed", LastTransitionTime: timestamppb.Now()}
	if succeeded {
		c.State, c.Message = runpb.Condition_CONDITION_SUCCEEDED, "Execution completed successfully in 1m0s."
		ex.SucceededCount = ex.TaskCount
	} else {
		if message == "" {
			message = "Task " + ex.Name[strings.LastIndex(ex.Name, "/")+1:] + "-task0 failed with exit code 1."
		}
		c.State, c.Message = runpb.Condition_CONDITION_FAILED, message
		c.Reasons = &runpb.Condition_ExecutionReason_{ExecutionReason: runpb.Condition_NON_ZERO_EXIT_CODE}
		ex.FailedCount = ex.TaskCount
	}
	s.finish(ex, c)
	return nil
}

// SetCompletionTime backdates the completion of a finished execution (and
// its job's latest execution reference), for tests of age-based cleanup.
func (s *Server) SetCompletionTime(name string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ex, ok := s.executions[name]
	if !ok || ex.CompletionTime == nil {
		return fmt.Errorf("cloudrunfake: no completed execution %s", name)
	}
	ex.CompletionTime = timestamppb.New(at)
	if j := s.jobs[jobOf(name)]; j != nil && j.LatestCreatedExecution.GetName() == name {
		j.LatestCreatedExecution.CompletionTime = ex.CompletionTime
	}
	return nil
}

// SetJobCreateTime backdates the creation of the job named name, for tests
// of age-based cleanup of jobs that never ran.
func (s *Server) SetJobCreateTime(name string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[name]
	if !ok {
		return fmt.Errorf("cloudrunfake: no job %s", name)
	}
	j.CreateTime = timestamppb.New(at)
	return nil
}

// finish marks ex completed with condition c. Callers hold s.mu.
func (s *Server) finish(ex *runpb.Execution, c *runpb.Condition) {
	now := timestamppb.Now()
	ex.CompletionTime, ex.UpdateTime, ex.RunningCount = now, now, 0
	ex.Conditions = append(slices.DeleteFunc(ex.Conditions, func(x *runpb.Condition) bool { return x.Type == "Completed" }), c)
	if j := s.jobs[jobOf(ex.Name)]; j != nil && j.LatestCreatedExecution.GetName() == ex.Name {
		j.LatestCreatedExecution.CompletionTime = now
		switch {
		case c.State == runpb.Condition_CONDITION_SUCCEEDED:
			j.LatestCreatedExecution.CompletionStatus = runpb.ExecutionReference_EXECUTION_SUCCEEDED
		case ex.CancelledCount > 0:
			j.LatestCreatedExecution.CompletionStatus = runpb.ExecutionReference_EXECUTION_CANCELLED
		default:
			j.LatestCreatedExecution.CompletionStatus = runpb.ExecutionReference_EXECUTION_FAILED
		}
	}
}

// ForgetJob removes the job named name (its full resource name) and its
// executions behind the client's back, as if someone else deleted them.
func (s *Server) ForgetJob(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.jobs, name)
	for n := range s.executions {
		if jobOf(n) == name {
			delete(s.executions, n)
		}
	}
}

// ForgetExecution removes one execution behind the client's back.
func (s *Server) ForgetExecution(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.executions, name)
}

// HasJob reports whether the job named name exists.
func (s *Server) HasJob(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.jobs[name]
	return ok
}

// Job returns a copy of the job named name, or nil.
func (s *Server) Job(name string) *runpb.Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j, ok := s.jobs[name]; ok {
		return proto.Clone(j).(*runpb.Job)
	}
	return nil
}

// CountJobs reports how many jobs carry the label key=value.
func (s *Server) CountJobs(key, value string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, j := range s.jobs {
		if v, ok := j.Labels[key]; ok && v == value {
			n++
		}
	}
	return n
}

// CountExecutions reports how many executions carry the label key=value.
func (s *Server) CountExecutions(key, value string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.executions {
		if v, ok := e.Labels[key]; ok && v == value {
			n++
		}
	}
	return n
}

// KilledWhileRunning lists the executions that were deleted (directly or
// with their job) while still running: Cloud Run sends their tasks SIGTERM,
// which turns a finishing flow run Crashed (PrefectHQ/prefect#23025).
func (s *Server) KilledWhileRunning() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.killed)
}

// ---- names ----

var (
	jobIDRe   = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)
	parentRe  = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+$`)
	jobRe     = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+/jobs/[^/]+$`)
	execRe    = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+/jobs/[^/]+/executions/[^/]+$`)
	tokenRe   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	lowerAlnu = "abcdefghijklmnopqrstuvwxyz0123456789"
)

func jobOf(execution string) string {
	i := strings.Index(execution, "/executions/")
	if i < 0 {
		return ""
	}
	return execution[:i]
}

func parentOf(job string) string { return job[:strings.Index(job, "/jobs/")] }

func randomSuffix(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails.
	for i := range b {
		b[i] = lowerAlnu[int(b[i])%len(lowerAlnu)]
	}
	return string(b)
}

func badRequest(field, msg string) error {
	st, _ := status.New(codes.InvalidArgument, msg).WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: msg}}})
	return st.Err()
}

func notFound(kind, name string) error {
	return status.Errorf(codes.NotFound, "Resource '%s' of kind '%s' in region '%s' in project '%s' does not exist.",
		name[strings.LastIndex(name, "/")+1:], kind, segment(name, "locations"), segment(name, "projects"))
}

func segment(name, key string) string {
	parts := strings.Split(name, "/")
	for i := 0; i+1 < len(parts); i += 2 {
		if parts[i] == key {
			return parts[i+1]
		}
	}
	return ""
}

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic("cloudrunfake: " + err.Error())
	}
	return a
}

// newOp records an operation and returns it as its state stands now.
// Callers hold s.mu.
func (s *Server) newOp(parent string, ref opRef) *longrunningpb.Operation {
	name := parent + "/operations/" + randomSuffix(12)
	s.ops[name] = ref
	return s.opState(name, ref)
}

// opState renders an operation from what it refers to. Callers hold s.mu.
func (s *Server) opState(name string, ref opRef) *longrunningpb.Operation {
	op := &longrunningpb.Operation{Name: name}
	switch ref.kind {
	case "job":
		j, ok := s.jobs[ref.target]
		if !ok {
			j = &runpb.Job{Name: ref.target}
		}
		op.Metadata = mustAny(j)
		op.Done = true
		if ref.err != nil {
			op.Result = &longrunningpb.Operation_Error{Error: ref.err.Proto()}
		} else {
			op.Result = &longrunningpb.Operation_Response{Response: mustAny(j)}
		}
	case "execution":
		ex, ok := s.executions[ref.target]
		if !ok {
			ex = &runpb.Execution{Name: ref.target}
		}
		op.Metadata = mustAny(ex)
		if ex.CompletionTime != nil || !ok {
			op.Done = true
			op.Result = &longrunningpb.Operation_Response{Response: mustAny(ex)}
		}
	}
	return op
}

// ---- Jobs ----

type jobsServer struct {
	runpb.UnimplementedJobsServer
	s *Server
}

var _ runpb.JobsServer = jobsServer{}

func (js jobsServer) CreateJob(_ context.Context, req *runpb.CreateJobRequest) (*longrunningpb.Operation, error) {
	s := js.s
	if !parentRe.MatchString(req.GetParent()) {
		return nil, badRequest("parent", fmt.Sprintf("Invalid parent %q: want projects/PROJECT/locations/REGION.", req.GetParent()))
	}
	if !jobIDRe.MatchString(req.GetJobId()) {
		return nil, badRequest("job_id", fmt.Sprintf("Invalid job id %q: it must be at most 63 characters, use only lowercase letters, digits and hyphens, begin with a letter and not end with a hyphen.", req.GetJobId()))
	}
	in := req.GetJob()
	if in == nil {
		return nil, badRequest("job", "job is required")
	}
	if in.GetName() != "" {
		return nil, badRequest("job.name", "job.name must be empty on create; the name is parent + job_id")
	}
	containers := in.GetTemplate().GetTemplate().GetContainers()
	if len(containers) == 0 {
		return nil, badRequest("job.template.template.containers", "A job needs at least one container.")
	}
	for i, c := range containers {
		if c.GetImage() == "" {
			return nil, badRequest(fmt.Sprintf("job.template.template.containers[%d].image", i), "Container image is required.")
		}
	}
	if err := checkExecutionToken(req.JobId, in); err != nil {
		return nil, err
	}
	name := req.Parent + "/jobs/" + req.JobId
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.jobs[name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "Resource '%s' already exists.", req.JobId)
	}
	if req.ValidateOnly {
		return &longrunningpb.Operation{Name: req.Parent + "/operations/validate", Done: true,
			Result: &longrunningpb.Operation_Response{Response: mustAny(in)}}, nil
	}
	j := proto.Clone(in).(*runpb.Job)
	now := timestamppb.Now()
	j.Name, j.Uid, j.Generation = name, randomSuffix(32), 1
	j.CreateTime, j.UpdateTime, j.Etag = now, now, `"`+randomSuffix(16)+`"`
	if j.Template.TaskCount == 0 {
		j.Template.TaskCount = 1
	}
	if j.Template.Parallelism == 0 {
		j.Template.Parallelism = j.Template.TaskCount
	}
	ref := opRef{kind: "job", target: name}
	ready := &runpb.Condition{Type: "Ready", State: runpb.Condition_CONDITION_SUCCEEDED, LastTransitionTime: now}
	for _, c := range containers {
		if msg, missing := s.missingImages[c.GetImage()]; missing {
			ready.State, ready.Message = runpb.Condition_CONDITION_FAILED, msg
			ready.Reasons = &runpb.Condition_Reason{Reason: runpb.Condition_CONTAINER_MISSING}
			ref.err = ImageNotFound(c.GetImage())
		}
	}
	if s.readyAfter > 0 && ref.err == nil {
		ready.State = runpb.Condition_CONDITION_RECONCILING
		s.readyPolls[name] = s.readyAfter
		j.Reconciling = true
	}
	j.TerminalCondition = ready
	j.Conditions = nil
	s.jobs[name] = j
	if ready.State == runpb.Condition_CONDITION_SUCCEEDED {
		s.becameReady(j)
	}
	return s.newOp(req.Parent, ref), nil
}

// checkExecutionToken checks a start_execution_token as Cloud Run does: the
// execution it names, <job id>-<token>, must be a valid name, and the job id
// and the token together fewer than 63 characters. run_execution_token is
// not implemented.
func checkExecutionToken(jobID string, j *runpb.Job) error {
	if _, ok := j.GetCreateExecution().(*runpb.Job_RunExecutionToken); ok {
		return status.Error(codes.Unimplemented, "cloudrunfake: run_execution_token is not implemented")
	}
	token := j.GetStartExecutionToken()
	if _, ok := j.GetCreateExecution().(*runpb.Job_StartExecutionToken); !ok {
		return nil
	}
	if len(jobID)+len(token) >= 63 {
		return badRequest("job.start_execution_token", fmt.Sprintf("The sum of job name and start_execution_token length must be fewer than 63 characters (job %q has %d, token %q has %d).", jobID, len(jobID), token, len(token)))
	}
	if !tokenRe.MatchString(token) {
		return badRequest("job.start_execution_token", fmt.Sprintf("Invalid start_execution_token %q: it must use only lowercase letters, digits and hyphens and not begin or end with a hyphen.", token))
	}
	return nil
}

// becameReady starts the execution a job created with a
// start_execution_token asks for, once, when the job becomes ready. Callers
// hold s.mu.
func (s *Server) becameReady(j *runpb.Job) {
	token := j.GetStartExecutionToken()
	if token == "" || j.ExecutionCount > 0 {
		return
	}
	short := j.Name[strings.LastIndex(j.Name, "/")+1:]
	s.startExecution(j, j.Name+"/executions/"+short+"-"+token)
}

func (js jobsServer) GetJob(_ context.Context, req *runpb.GetJobRequest) (*runpb.Job, error) {
	s := js.s
	if !jobRe.MatchString(req.GetName()) {
		return nil, badRequest("name", fmt.Sprintf("Invalid job name %q.", req.GetName()))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[req.Name]
	if !ok {
		return nil, notFound("jobs", req.Name)
	}
	if n, pending := s.readyPolls[req.Name]; pending {
		if n <= 0 {
			delete(s.readyPolls, req.Name)
			j.TerminalCondition.State = runpb.Condition_CONDITION_SUCCEEDED
			j.Reconciling = false
			s.becameReady(j)
		} else {
			s.readyPolls[req.Name] = n - 1
		}
	}
	return proto.Clone(j).(*runpb.Job), nil
}

func (js jobsServer) ListJobs(_ context.Context, req *runpb.ListJobsRequest) (*runpb.ListJobsResponse, error) {
	s := js.s
	if !parentRe.MatchString(req.GetParent()) {
		return nil, badRequest("parent", fmt.Sprintf("Invalid parent %q.", req.GetParent()))
	}
	s.mu.Lock()
	var all []*runpb.Job
	for name, j := range s.jobs {
		if parentOf(name) == req.Parent {
			all = append(all, proto.Clone(j).(*runpb.Job))
		}
	}
	s.mu.Unlock()
	sortNewestFirst(all, func(j *runpb.Job) (*timestamppb.Timestamp, string) { return j.CreateTime, j.Name })
	page, next, err := paginate(all, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	return &runpb.ListJobsResponse{Jobs: page, NextPageToken: next}, nil
}

func (js jobsServer) DeleteJob(_ context.Context, req *runpb.DeleteJobRequest) (*longrunningpb.Operation, error) {
	s := js.s
	if !jobRe.MatchString(req.GetName()) {
		return nil, badRequest("name", fmt.Sprintf("Invalid job name %q.", req.GetName()))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[req.Name]
	if !ok {
		return nil, notFound("jobs", req.Name)
	}
	for n, ex := range s.executions {
		if jobOf(n) == req.Name {
			if ex.CompletionTime == nil {
				s.killed = append(s.killed, n)
			}
			delete(s.executions, n)
		}
	}
	delete(s.jobs, req.Name)
	delete(s.readyPolls, req.Name)
	return &longrunningpb.Operation{Name: parentOf(req.Name) + "/operations/" + randomSuffix(12), Done: true,
		Metadata: mustAny(j), Result: &longrunningpb.Operation_Response{Response: mustAny(j)}}, nil
}

func (js jobsServer) RunJob(_ context.Context, req *runpb.RunJobRequest) (*longrunningpb.Operation, error) {
	s := js.s
	if !jobRe.MatchString(req.GetName()) {
		return nil, badRequest("name", fmt.Sprintf("Invalid job name %q.", req.GetName()))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[req.Name]
	if !ok {
		return nil, notFound("jobs", req.Name)
	}
	if j.TerminalCondition.GetState() != runpb.Condition_CONDITION_SUCCEEDED {
		return nil, status.Errorf(codes.FailedPrecondition, "Job '%s' is not ready: %s", req.Name, j.TerminalCondition.GetMessage())
	}
	short := req.Name[strings.LastIndex(req.Name, "/")+1:]
	name := req.Name + "/executions/" + short + "-" + randomSuffix(5)
	s.startExecution(j, name)
	return s.newOp(parentOf(req.Name), opRef{kind: "execution", target: name}), nil
}

// startExecution starts the execution name of job j, running its tasks.
// Callers hold s.mu.
func (s *Server) startExecution(j *runpb.Job, name string) {
	short := j.Name[strings.LastIndex(j.Name, "/")+1:]
	now := timestamppb.Now()
	labels := map[string]string{}
	for k, v := range j.Template.GetLabels() {
		labels[k] = v
	}
	labels["run.googleapis.com/execution-environment"] = "gen2"
	ex := &runpb.Execution{
		Name: name, Uid: randomSuffix(32), Generation: 1, Labels: labels,
		CreateTime: now, StartTime: now, UpdateTime: now,
		LaunchStage: j.LaunchStage, Job: short,
		Parallelism: j.Template.Parallelism, TaskCount: j.Template.TaskCount,
		Template: proto.Clone(j.Template.GetTemplate()).(*runpb.TaskTemplate),
		Conditions: []*runpb.Condition{
			{Type: "ResourcesAvailable", State: runpb.Condition_CONDITION_SUCCEEDED, LastTransitionTime: now},
			{Type: "Started", State: runpb.Condition_CONDITION_SUCCEEDED, LastTransitionTime: now},
			{Type: "Completed", State: runpb.Condition_CONDITION_PENDING, LastTransitionTime: now},
		},
		RunningCount: j.Template.TaskCount,
		LogUri:       "https://console.cloud.google.com/logs/viewer?project=" + segment(name, "projects"),
		Etag:         `"` + randomSuffix(16) + `"`,
	}
	s.executions[name] = ex
	j.ExecutionCount++
	j.LatestCreatedExecution = &runpb.ExecutionReference{Name: name, CreateTime: now}
}

// ---- Executions ----

type executionsServer struct {
	runpb.UnimplementedExecutionsServer
	s *Server
}

var _ runpb.ExecutionsServer = executionsServer{}

func (es executionsServer) GetExecution(_ context.Context, req *runpb.GetExecutionRequest) (*runpb.Execution, error) {
	s := es.s
	if !execRe.MatchString(req.GetName()) {
		return nil, badRequest("name", fmt.Sprintf("Invalid execution name %q.", req.GetName()))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ex, ok := s.executions[req.Name]
	if !ok {
		return nil, notFound("executions", req.Name)
	}
	return proto.Clone(ex).(*runpb.Execution), nil
}

func (es executionsServer) ListExecutions(_ context.Context, req *runpb.ListExecutionsRequest) (*runpb.ListExecutionsResponse, error) {
	s := es.s
	if !jobRe.MatchString(req.GetParent()) {
		return nil, badRequest("parent", fmt.Sprintf("Invalid parent %q: want projects/PROJECT/locations/REGION/jobs/JOB.", req.GetParent()))
	}
	wildcard := strings.HasSuffix(req.Parent, "/jobs/-")
	s.mu.Lock()
	if _, ok := s.jobs[req.Parent]; !ok && !wildcard {
		s.mu.Unlock()
		return nil, notFound("jobs", req.Parent)
	}
	var all []*runpb.Execution
	for name, ex := range s.executions {
		if jobOf(name) == req.Parent || (wildcard && parentOf(jobOf(name)) == parentOf(req.Parent)) {
			all = append(all, proto.Clone(ex).(*runpb.Execution))
		}
	}
	s.mu.Unlock()
	sortNewestFirst(all, func(e *runpb.Execution) (*timestamppb.Timestamp, string) { return e.CreateTime, e.Name })
	page, next, err := paginate(all, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	return &runpb.ListExecutionsResponse{Executions: page, NextPageToken: next}, nil
}

func (es executionsServer) DeleteExecution(_ context.Context, req *runpb.DeleteExecutionRequest) (*longrunningpb.Operation, error) {
	s := es.s
	if !execRe.MatchString(req.GetName()) {
		return nil, badRequest("name", fmt.Sprintf("Invalid execution name %q.", req.GetName()))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ex, ok := s.executions[req.Name]
	if !ok {
		return nil, notFound("executions", req.Name)
	}
	if ex.CompletionTime == nil {
		s.killed = append(s.killed, req.Name)
	}
	delete(s.executions, req.Name)
	return &longrunningpb.Operation{Name: parentOf(jobOf(req.Name)) + "/operations/" + randomSuffix(12), Done: true,
		Metadata: mustAny(ex), Result: &longrunningpb.Operation_Response{Response: mustAny(ex)}}, nil
}

func (es executionsServer) CancelExecution(_ context.Context, req *runpb.CancelExecutionRequest) (*longrunningpb.Operation, error) {
	s := es.s
	if !execRe.MatchString(req.GetName()) {
		return nil, badRequest("name", fmt.Sprintf("Invalid execution name %q.", req.GetName()))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ex, ok := s.executions[req.Name]
	if !ok {
		return nil, notFound("executions", req.Name)
	}
	if ex.CompletionTime != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "Execution '%s' has already completed and cannot be cancelled.", req.Name)
	}
	ex.CancelledCount = ex.RunningCount
	s.finish(ex, &runpb.Condition{Type: "Completed", State: runpb.Condition_CONDITION_FAILED,
		Message: "The execution was cancelled.", LastTransitionTime: timestamppb.Now(),
		Reasons: &runpb.Condition_ExecutionReason_{ExecutionReason: runpb.Condition_CANCELLED}})
	return s.newOp(parentOf(jobOf(req.Name)), opRef{kind: "execution", target: req.Name}), nil
}

// ---- Operations ----

type operationsServer struct {
	longrunningpb.UnimplementedOperationsServer
	s *Server
}

var _ longrunningpb.OperationsServer = operationsServer{}

func (o operationsServer) GetOperation(_ context.Context, req *longrunningpb.GetOperationRequest) (*longrunningpb.Operation, error) {
	s := o.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, ok := s.ops[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Operation '%s' does not exist.", req.GetName())
	}
	return s.opState(req.Name, ref), nil
}

func (o operationsServer) WaitOperation(ctx context.Context, req *longrunningpb.WaitOperationRequest) (*longrunningpb.Operation, error) {
	deadline := time.Now().Add(time.Second)
	if t := req.GetTimeout(); t != nil {
		deadline = time.Now().Add(t.AsDuration())
	}
	for {
		op, err := o.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: req.GetName()})
		if err != nil || op.Done || time.Now().After(deadline) {
			return op, err
		}
		select {
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (o operationsServer) ListOperations(_ context.Context, req *longrunningpb.ListOperationsRequest) (*longrunningpb.ListOperationsResponse, error) {
	s := o.s
	s.mu.Lock()
	var all []*longrunningpb.Operation
	for name, ref := range s.ops {
		if strings.HasPrefix(name, req.GetName()+"/") || req.GetName() == "" {
			all = append(all, s.opState(name, ref))
		}
	}
	s.mu.Unlock()
	slices.SortFunc(all, func(a, b *longrunningpb.Operation) int { return strings.Compare(a.Name, b.Name) })
	page, next, err := paginate(all, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	return &longrunningpb.ListOperationsResponse{Operations: page, NextPageToken: next}, nil
}

func (o operationsServer) DeleteOperation(_ context.Context, req *longrunningpb.DeleteOperationRequest) (*emptypb.Empty, error) {
	s := o.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ops[req.GetName()]; !ok {
		return nil, status.Errorf(codes.NotFound, "Operation '%s' does not exist.", req.GetName())
	}
	delete(s.ops, req.Name)
	return &emptypb.Empty{}, nil
}

func (o operationsServer) CancelOperation(context.Context, *longrunningpb.CancelOperationRequest) (*emptypb.Empty, error) {
	return nil, status.Error(codes.Unimplemented, "Cloud Run operations cannot be cancelled")
}

// ---- helpers ----

func sortNewestFirst[T any](items []T, key func(T) (*timestamppb.Timestamp, string)) {
	slices.SortFunc(items, func(a, b T) int {
		ta, na := key(a)
		tb, nb := key(b)
		if c := tb.AsTime().Compare(ta.AsTime()); c != 0 {
			return c
		}
		return strings.Compare(nb, na)
	})
}

// paginate returns one page of items; tokens are offsets, as opaque to the
// client as the real ones.
func paginate[T any](items []T, size int32, token string) ([]T, string, error) {
	if size <= 0 || size > 100 {
		size = 100
	}
	start := 0
	if token != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(token, "o"))
		if err != nil || n < 0 || n > len(items) {
			return nil, "", status.Errorf(codes.InvalidArgument, "Invalid page token %q.", token)
		}
		start = n
	}
	end := min(start+int(size), len(items))
	next := ""
	if end < len(items) {
		next = "o" + strconv.Itoa(end)
	}
	return items[start:end], next, nil
}
