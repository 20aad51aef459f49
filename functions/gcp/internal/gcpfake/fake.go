// Package gcpfake is an in-process fake of the two Google Cloud APIs the
// GCP function calls besides Pub/Sub (whose SDK ships pstest): Cloud Tasks
// v2 and Secret Manager v1, served over gRPC on 127.0.0.1 with the real
// cloudtaskspb and secretmanagerpb types, so the real
// cloud.google.com/go/cloudtasks/apiv2 and secretmanager/apiv1 clients can
// be tested against it. No fake ships with either library.
//
// It implements only what pushpool calls, with the semantics the services
// document: CreateTask into an existing queue, HTTP targets only, named
// tasks deduplicated with AlreadyExists, schedule_time at most 30 days
// ahead, the BASIC response view without the body; AccessSecretVersion of a
// version or "latest", with the payload's CRC32C. Every other method
// answers Unimplemented. Its Go methods are the test controls: create
// queues and secrets, read the tasks back, inject gRPC errors, and build
// the HTTP request Cloud Tasks would send for a task.
package gcpfake

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// MaxScheduleAhead is how far ahead Cloud Tasks accepts a schedule_time.
const MaxScheduleAhead = 30 * 24 * time.Hour

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	addr string
	grpc *grpc.Server
	now  func() time.Time

	mu      sync.Mutex
	queues  map[string][]*cloudtaskspb.Task // queue name → tasks, in creation order
	secrets map[string][]string             // secret name → versions (1-based)
	faults  map[string][]*fault             // method → pending faults, in order
	calls   map[string]int
}

type fault struct {
	st    *status.Status
	times int // < 0: forever
}

// Start starts a fake listening on 127.0.0.1 at a free port. Stop it with
// Stop.
func Start() (*Server, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("gcpfake: listen on 127.0.0.1: %w", err)
	}
	s := &Server{
		addr:    lis.Addr().String(),
		now:     time.Now,
		queues:  map[string][]*cloudtaskspb.Task{},
		secrets: map[string][]string{},
		faults:  map[string][]*fault{},
		calls:   map[string]int{},
	}
	s.grpc = grpc.NewServer(grpc.UnaryInterceptor(s.intercept))
	cloudtaskspb.RegisterCloudTasksServer(s.grpc, tasksServer{s: s})
	secretmanagerpb.RegisterSecretManagerServiceServer(s.grpc, secretsServer{s: s})
	go s.grpc.Serve(lis) //nolint:errcheck // Serve returns when Stop closes the listener.
	return s, nil
}

// Addr is the host:port the fake listens on.
func (s *Server) Addr() string { return s.addr }

// Stop stops the fake, ending calls in flight.
func (s *Server) Stop() { s.grpc.Stop() }

func (s *Server) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	method := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
	s.mu.Lock()
	s.calls[method]++
	var injected *status.Status
	if q := s.faults[method]; len(q) > 0 {
		f := q[0]
		injected = f.st
		if f.times > 0 {
			f.times--
			if f.times == 0 {
				s.faults[method] = q[1:]
			}
		}
	}
	s.mu.Unlock()
	if injected != nil {
		return nil, injected.Err()
	}
	return handler(ctx, req)
}

// ---- test controls ----

// Inject makes the next `times` calls of method (a short gRPC method name
// such as "CreateTask") fail with st; times < 0 means every call until
// Clear.
func (s *Server) Inject(method string, st *status.Status, times int) {
	if times == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = append(s.faults[method], &fault{st: st, times: times})
}

// Clear removes every pending injected fault.
func (s *Server) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string][]*fault{}
}

// Calls reports how many times method was called, injected faults included.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// AddQueue creates the queue named name
// (projects/P/locations/L/queues/Q).
func (s *Server) AddQueue(name string) error {
	if !queueRe.MatchString(name) {
		return fmt.Errorf("gcpfake: %q is not a queue name (projects/P/locations/L/queues/Q)", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.queues[name]; !ok {
		s.queues[name] = nil
	}
	return nil
}

// Tasks returns copies of the tasks of queue (FULL view), in creation
// order.
func (s *Server) Tasks(queue string) []*cloudtaskspb.Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*cloudtaskspb.Task
	for _, t := range s.queues[queue] {
		out = append(out, proto.Clone(t).(*cloudtaskspb.Task))
	}
	return out
}

// AddSecret adds a version holding value to the secret named name
// (projects/P/secrets/S), creating the secret, and returns the version's
// name.
func (s *Server) AddSecret(name, value string) (string, error) {
	if !secretRe.MatchString(name) {
		return "", fmt.Errorf("gcpfake: %q is not a secret name (projects/P/secrets/S)", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[name] = append(s.secrets[name], value)
	return name + "/versions/" + strconv.Itoa(len(s.secrets[name])), nil
}

// Request returns the HTTP request Cloud Tasks sends for task on its
// attempt'th try (1 for the first), with the X-CloudTasks-* headers an
// HTTP target receives. The OIDC token, if the task asks for one, is left
// out: Cloud Run checks it before the request reaches the container.
func Request(ctx context.Context, task *cloudtaskspb.Task, attempt int) (*http.Request, error) {
	hr := task.GetHttpRequest()
	if hr == nil {
		return nil, fmt.Errorf("gcpfake: task %s has no HTTP request", task.GetName())
	}
	method := hr.GetHttpMethod().String()
	if hr.GetHttpMethod() == cloudtaskspb.HttpMethod_HTTP_METHOD_UNSPECIFIED {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(ctx, method, hr.GetUrl(), bytes.NewReader(hr.GetBody()))
	if err != nil {
		return nil, fmt.Errorf("gcpfake: task %s: %w", task.GetName(), err)
	}
	for k, v := range hr.GetHeaders() {
		req.Header.Set(k, v)
	}
	queue, id, _ := strings.Cut(task.GetName(), "/tasks/")
	req.Header.Set("User-Agent", "Google-Cloud-Tasks")
	req.Header.Set("X-CloudTasks-QueueName", queue[strings.LastIndex(queue, "/")+1:])
	req.Header.Set("X-CloudTasks-TaskName", id)
	req.Header.Set("X-CloudTasks-TaskRetryCount", strconv.Itoa(attempt-1))
	req.Header.Set("X-CloudTasks-TaskExecutionCount", strconv.Itoa(attempt-1))
	eta := task.GetScheduleTime().AsTime()
	req.Header.Set("X-CloudTasks-TaskETA", strconv.FormatFloat(float64(eta.UnixMicro())/1e6, 'f', 6, 64))
	return req, nil
}

// ---- names ----

var (
	queueRe   = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+/queues/[A-Za-z0-9-]{1,100}$`)
	taskIDRe  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,500}$`)
	secretRe  = regexp.MustCompile(`^projects/[^/]+/secrets/[A-Za-z0-9_-]{1,255}$`)
	versionRe = regexp.MustCompile(`^(projects/[^/]+/secrets/[A-Za-z0-9_-]{1,255})/versions/([^/]+)$`)
)

// ---- Cloud Tasks ----

type tasksServer struct {
	cloudtaskspb.UnimplementedCloudTasksServer
	s *Server
}

func (t tasksServer) CreateTask(_ context.Context, req *cloudtaskspb.CreateTaskRequest) (*cloudtaskspb.Task, error) {
	s := t.s
	if !queueRe.MatchString(req.GetParent()) {
		return nil, status.Errorf(codes.InvalidArgument, "Invalid resource field value in the request: parent %q is not a queue name.", req.GetParent())
	}
	in := req.GetTask()
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "Task is required.")
	}
	hr := in.GetHttpRequest()
	if hr == nil {
		return nil, status.Error(codes.Unimplemented, "gcpfake serves HTTP targets only")
	}
	if !strings.HasPrefix(hr.GetUrl(), "http://") && !strings.HasPrefix(hr.GetUrl(), "https://") {
		return nil, status.Errorf(codes.InvalidArgument, "HttpRequest.url must begin with http:// or https://; got %q.", hr.GetUrl())
	}
	m := hr.GetHttpMethod()
	if len(hr.GetBody()) > 0 && m != cloudtaskspb.HttpMethod_POST && m != cloudtaskspb.HttpMethod_PUT &&
		m != cloudtaskspb.HttpMethod_PATCH && m != cloudtaskspb.HttpMethod_HTTP_METHOD_UNSPECIFIED {
		return nil, status.Errorf(codes.InvalidArgument, "HttpRequest.body may be set only for POST, PUT and PATCH, not %v.", m)
	}
	if o := hr.GetOidcToken(); o != nil && o.GetServiceAccountEmail() == "" {
		return nil, status.Error(codes.InvalidArgument, "OidcToken.service_account_email is required.")
	}
	now := s.now()
	sched := now
	if in.GetScheduleTime() != nil {
		st := in.GetScheduleTime().AsTime()
		if st.Sub(now) > MaxScheduleAhead {
			return nil, status.Errorf(codes.InvalidArgument, "Task.schedule_time %s is more than 30 days in the future.", st.UTC().Format(time.RFC3339))
		}
		if st.After(now) {
			sched = st
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	tasks, ok := s.queues[req.GetParent()]
	if !ok {
		return nil, status.Error(codes.NotFound, "Requested entity was not found.")
	}
	name := in.GetName()
	if name == "" {
		name = req.GetParent() + "/tasks/" + strconv.FormatUint(rand.Uint64(), 10)
	} else {
		q, id, found := strings.Cut(name, "/tasks/")
		if !found || q != req.GetParent() || !taskIDRe.MatchString(id) {
			return nil, status.Errorf(codes.InvalidArgument, "Task name %q must be %s/tasks/TASK_ID, with TASK_ID of letters, digits, hyphens and underscores (at most 500).", name, req.GetParent())
		}
		if slices.ContainsFunc(tasks, func(t *cloudtaskspb.Task) bool { return t.GetName() == name }) {
			return nil, status.Error(codes.AlreadyExists, "Requested entity already exists")
		}
	}
	task := proto.Clone(in).(*cloudtaskspb.Task)
	task.Name = name
	task.ScheduleTime = timestamppb.New(sched)
	task.CreateTime = timestamppb.New(now)
	if task.DispatchDeadline == nil {
		task.DispatchDeadline = durationpb.New(10 * time.Minute)
	}
	if task.GetHttpRequest().GetHttpMethod() == cloudtaskspb.HttpMethod_HTTP_METHOD_UNSPECIFIED {
		task.GetHttpRequest().HttpMethod = cloudtaskspb.HttpMethod_POST
	}
	task.View = cloudtaskspb.Task_FULL
	s.queues[req.GetParent()] = append(tasks, task)

	out := proto.Clone(task).(*cloudtaskspb.Task)
	if req.GetResponseView() != cloudtaskspb.Task_FULL {
		out.View = cloudtaskspb.Task_BASIC
		out.GetHttpRequest().Body = nil
	}
	return out, nil
}

// ---- Secret Manager ----

type secretsServer struct {
	secretmanagerpb.UnimplementedSecretManagerServiceServer
	s *Server
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (sv secretsServer) AccessSecretVersion(_ context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	m := versionRe.FindStringSubmatch(req.GetName())
	if m == nil {
		return nil, status.Errorf(codes.InvalidArgument, "Invalid resource field value in the request: name %q is not projects/P/secrets/S/versions/V.", req.GetName())
	}
	sv.s.mu.Lock()
	defer sv.s.mu.Unlock()
	versions := sv.s.secrets[m[1]]
	n := len(versions)
	if m[2] != "latest" {
		v, err := strconv.Atoi(m[2])
		if err != nil || v < 1 {
			return nil, status.Errorf(codes.InvalidArgument, "Invalid secret version %q: use a version number or latest.", m[2])
		}
		n = v
	}
	if n == 0 || n > len(versions) {
		return nil, status.Errorf(codes.NotFound, "Secret Version [%s/versions/%s] not found.", m[1], m[2])
	}
	data := []byte(versions[n-1])
	sum := int64(crc32.Checksum(data, castagnoli))
	return &secretmanagerpb.AccessSecretVersionResponse{
		Name:    m[1] + "/versions/" + strconv.Itoa(n),
		Payload: &secretmanagerpb.SecretPayload{Data: data, DataCrc32C: &sum},
	}, nil
}
