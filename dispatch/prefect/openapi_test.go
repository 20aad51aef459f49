package prefect

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/pushpool/pushpool/internal/localstack"
)

// The conformance tests read /openapi.json from the pinned server; they share
// the package's TestMain (in integration_test.go, package prefect_test) through
// PUSHPOOL_TEST_PREFECT_URL, or start a server of their own.

func openAPI(t *testing.T) map[string]any {
	t.Helper()
	url := os.Getenv("PUSHPOOL_TEST_PREFECT_URL")
	if url == "" {
		p, err := localstack.StartPrefect(t.Context(), localstack.PrefectOptions{})
		if err != nil {
			t.Fatalf("start Prefect for the OpenAPI document: %v", err)
		}
		t.Cleanup(func() { p.Stop() })
		url = p.URL
	}
	resp, err := http.Get(url + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// declaredRoutes parses this package's source for constants of type route.
func declaredRoutes(t *testing.T) map[string]route {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]route{}
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			ast.Inspect(f, func(n ast.Node) bool {
				spec, ok := n.(*ast.ValueSpec)
				if !ok {
					return true
				}
				if id, ok := spec.Type.(*ast.Ident); !ok || id.Name != "route" {
					return true
				}
				for i, name := range spec.Names {
					lit := spec.Values[i].(*ast.BasicLit)
					v, _ := strconv.Unquote(lit.Value)
					routes[name.Name] = route(v)
				}
				return true
			})
		}
	}
	return routes
}

func TestRoutes_existInOpenAPI(t *testing.T) {
	doc := openAPI(t)
	paths := doc["paths"].(map[string]any)
	routes := declaredRoutes(t)
	if len(routes) < 50 {
		t.Fatalf("found only %d route constants; the parser missed some", len(routes))
	}
	for name, r := range routes {
		method, path := r.split()
		ops, ok := paths[path].(map[string]any)
		if !ok {
			t.Errorf("%s: path %s is not served by Prefect %s", name, path, srv())
			continue
		}
		if _, ok := ops[strings.ToLower(method)]; !ok {
			t.Errorf("%s: %s %s is not served by Prefect", name, method, path)
		}
	}
	t.Logf("%d routes checked against the server's OpenAPI document", len(routes))
}

func srv() string { return os.Getenv("PUSHPOOL_TEST_PREFECT_VERSION") }

func TestTypes_fieldsExistInOpenAPI(t *testing.T) {
	doc := openAPI(t)
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	types := []struct {
		value  any
		schema string
	}{
		{WorkPool{}, "WorkPoolResponse"},
		{WorkPoolCreate{}, "WorkPoolCreate"},
		{WorkPoolUpdate{}, "WorkPoolUpdate"},
		{ScheduledRunsRequest{}, "Body_get_scheduled_flow_runs_work_pools__name__get_scheduled_flow_runs_post"},
		{ScheduledRun{}, "WorkerFlowRunResponse"},
		{Worker{}, "WorkerResponse"},
		{WorkQueue{}, "WorkQueueResponse"},
		{WorkQueueCreate{}, "WorkQueueCreate"},
		{WorkQueueUpdate{}, "WorkQueueUpdate"},
		{Flow{}, "Flow"},
		{Deployment{}, "DeploymentResponse"},
		{DeploymentCreate{}, "DeploymentCreate"},
		{DeploymentUpdate{}, "DeploymentUpdate"},
		{DeploymentSettings{}, "DeploymentUpdate"},
		{DeploymentFlowRunCreate{}, "DeploymentFlowRunCreate"},
		{ConcurrencyOptions{}, "ConcurrencyOptions"},
		{DeploymentSchedule{}, "DeploymentSchedule"},
		{ScheduleCreate{}, "DeploymentScheduleCreate"},
		{ScheduleUpdate{}, "DeploymentScheduleUpdate"},
		{FlowRun{}, "FlowRunResponse"},
		{FlowRunCreate{}, "FlowRunCreate"},
		{FlowRunUpdate{}, "FlowRunUpdate"},
		{State{}, "State"},
		{StateCreate{}, "StateCreate"},
		{StateDetails{}, "StateDetails"},
		{OrchestrationResult{}, "OrchestrationResult"},
		{Log{}, "LogCreate"},
		{Event{}, "Event"},
		{Variable{}, "Variable"},
		{BlockType{}, "BlockType"},
		{BlockSchema{}, "BlockSchema"},
		{BlockDocument{}, "BlockDocument"},
		{BlockDocumentUpdate{}, "BlockDocumentUpdate"},
		{GlobalConcurrencyLimit{}, "GlobalConcurrencyLimitResponse"},
		{GlobalConcurrencyLimitUpdate{}, "ConcurrencyLimitV2Update"},
		{TaskRunConcurrencyLimit{}, "ConcurrencyLimit"},
		{Automation{}, "Automation"},
	}
	fields := 0
	for _, tt := range types {
		schema, ok := schemas[tt.schema].(map[string]any)
		if !ok {
			t.Errorf("%T: schema %s does not exist", tt.value, tt.schema)
			continue
		}
		props, _ := schema["properties"].(map[string]any)
		rt := reflect.TypeOf(tt.value)
		for i := 0; i < rt.NumField(); i++ {
			tag, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			fields++
			if _, ok := props[tag]; !ok {
				t.Errorf("%s.%s: field %q is not in the server's %s schema", rt.Name(), rt.Field(i).Name, tag, tt.schema)
			}
		}
	}
	t.Logf("%d fields of %d types checked against the server's schemas", fields, len(types))
}
