package infra

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// ecsBackendActions maps each method of the SDK interfaces
// dispatch/backend/ecs declares (ecsAPI and ec2API in ecs.go: the only way it
// reaches AWS) to the IAM actions the call is authorised by. infra/aws's
// function policy must grant exactly the union of these ECS and EC2 actions,
// plus the Lambda's own (lambdaOwnActions).
var ecsBackendActions = map[string][]string{
	// Tags the content hash on the new revision (tag on create); passes the
	// task definition's task and execution roles.
	"ecsAPI.RegisterTaskDefinition": {"ecs:RegisterTaskDefinition", "ecs:TagResource", "iam:PassRole"},
	"ecsAPI.DescribeTaskDefinition": {"ecs:DescribeTaskDefinition"},
	"ecsAPI.ListTaskDefinitions":    {"ecs:ListTaskDefinitions"},
	// Tags the task with the flow run and attempt (tag on create); passes
	// the roles of taskRoleArn / executionRoleArn overrides.
	"ecsAPI.RunTask":       {"ecs:RunTask", "ecs:TagResource", "iam:PassRole"},
	"ecsAPI.ListTasks":     {"ecs:ListTasks"},
	"ecsAPI.DescribeTasks": {"ecs:DescribeTasks"},
	"ecsAPI.StopTask":      {"ecs:StopTask"},
	// The default VPC's subnets for awsvpc tasks without a network
	// configuration.
	"ec2API.DescribeVpcs":    {"ec2:DescribeVpcs"},
	"ec2API.DescribeSubnets": {"ec2:DescribeSubnets"},
}

// lambdaOwnActions are the EC2 actions of the function policy that are the
// Lambda runtime's, not the backend's: the network interfaces of a function
// in a VPC (what AWSLambdaVPCAccessExecutionRole grants).
var lambdaOwnActions = []string{
	"ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
	"ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
}

// cloudRunPermissions maps each Cloud Run v2 client method
// dispatch/backend/cloudrun calls (<client type>.<method>) to the IAM
// permissions it needs in the jobs project. infra/gcp's custom role must
// hold exactly their union. iam.serviceAccounts.actAs, which CreateJob also
// needs for the job's service account, is not in the role: infra/gcp grants
// it on each of job_service_account_emails only.
var cloudRunPermissions = map[string][]string{
	// The job carries a start_execution_token, so Cloud Run starts its
	// execution as the job becomes ready: that is running the job, which
	// run.jobs.run grants (RunJob is never called; Google documents no
	// other permission for the token).
	"JobsClient.CreateJob":             {"run.jobs.create", "run.jobs.run"},
	"JobsClient.GetJob":                {"run.jobs.get"},
	"JobsClient.ListJobs":              {"run.jobs.list"},
	"JobsClient.DeleteJob":             {"run.jobs.delete"},
	"ExecutionsClient.GetExecution":    {"run.executions.get"},
	"ExecutionsClient.ListExecutions":  {"run.executions.list"},
	"ExecutionsClient.CancelExecution": {"run.executions.cancel"},
	// Closing a client's connection calls no API.
	"JobsClient.Close":       nil,
	"ExecutionsClient.Close": nil,
}

// union returns the sorted, distinct values of m.
func union(m map[string][]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v...)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// sortedKeys returns m's keys, sorted.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// parseGoPackage parses the non-test Go files of dir.
func parseGoPackage(t *testing.T, dir string) (*token.FileSet, []*ast.File) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no Go files in %s (%v): the test reads the backend's calls from there", dir, err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", p, err)
		}
		files = append(files, f)
	}
	return fset, files
}

// interfaceMethods returns "<interface>.<method>" for every method of the
// named interfaces declared in files.
func interfaceMethods(files []*ast.File, names ...string) []string {
	var out []string
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok || !slices.Contains(names, ts.Name.Name) {
				return true
			}
			if it, ok := ts.Type.(*ast.InterfaceType); ok {
				for _, m := range it.Methods.List {
					for _, id := range m.Names {
						out = append(out, ts.Name.Name+"."+id.Name)
					}
				}
			}
			return false
		})
	}
	sort.Strings(out)
	return out
}

// clientCalls returns "<client type>.<method>" for every call x.<field>.<M>(...)
// in files where <field> is a struct field of type *<pkg>.<T>Client and <pkg>
// is the file's import of importPath.
func clientCalls(files []*ast.File, importPath string) []string {
	fields := map[string]string{} // field name -> client type
	for _, f := range files {
		pkg := ""
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == importPath {
				pkg = filepath.Base(p)
				if imp.Name != nil {
					pkg = imp.Name.Name
				}
			}
		}
		if pkg == "" {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			field, ok := n.(*ast.Field)
			if !ok {
				return true
			}
			star, ok := field.Type.(*ast.StarExpr)
			if !ok {
				return true
			}
			sel, ok := star.X.(*ast.SelectorExpr)
			if !ok || !strings.HasSuffix(sel.Sel.Name, "Client") {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == pkg {
				for _, name := range field.Names {
					fields[name.Name] = sel.Sel.Name
				}
			}
			return true
		})
	}
	seen := map[string]bool{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			method, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			recv, ok := method.X.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if typ, ok := fields[recv.Sel.Name]; ok {
				seen[typ+"."+method.Sel.Name] = true
			}
			return true
		})
	}
	return sortedKeys(seen)
}

// stringConst returns the value of the string constant name declared in files.
func stringConst(files []*ast.File, name string) (string, bool) {
	for _, f := range files {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if id.Name != name || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, err := strconv.Unquote(lit.Value)
						return v, err == nil
					}
				}
			}
		}
	}
	return "", false
}

// statements returns the statement bodies of data "aws_iam_policy_document"
// "name" (dynamic statements included) with their literal actions.
func (m *tfModule) statements(t *testing.T, name string) map[*hclsyntax.Body][]string {
	t.Helper()
	docs := m.topBlocks("data", "aws_iam_policy_document", name)
	if len(docs) != 1 {
		t.Fatalf("infra/aws: want one data \"aws_iam_policy_document\" %q, found %d", name, len(docs))
	}
	out := map[*hclsyntax.Body][]string{}
	for _, st := range blocksOf(docs[0].Body, "statement") {
		if a, ok := st.Attributes["actions"]; ok {
			out[st], _ = staticStrings(a.Expr)
		}
	}
	return out
}

// conditionValues returns the literal values of st's condition on variable.
func conditionValues(st *hclsyntax.Body, variable string) ([]string, bool) {
	for _, c := range blocksOf(st, "condition") {
		v, _ := staticStrings(c.Attributes["variable"].Expr)
		if slices.Equal(v, []string{variable}) {
			return staticStrings(c.Attributes["values"].Expr)
		}
	}
	return nil, false
}

// TestModules_AWSActionsMatchECSBackend checks that infra/aws grants the ECS
// and EC2 actions of exactly the calls dispatch/backend/ecs makes: every
// method of its SDK interfaces is in ecsBackendActions, and the function
// policy's ecs:, ec2: and iam:PassRole actions are their union (and the
// Lambda's own VPC actions), no more and no fewer.
func TestModules_AWSActionsMatchECSBackend(t *testing.T) {
	t.Parallel()
	_, files := parseGoPackage(t, filepath.Join("..", "dispatch", "backend", "ecs"))
	methods := interfaceMethods(files, "ecsAPI", "ec2API")
	if len(methods) == 0 {
		t.Fatalf("dispatch/backend/ecs declares no ecsAPI or ec2API interface: update ecsBackendActions to where the backend's AWS calls are declared")
	}
	if want := sortedKeys(ecsBackendActions); !slices.Equal(methods, want) {
		t.Errorf("dispatch/backend/ecs calls %v; ecsBackendActions documents %v: map every new call to its IAM actions (and grant them in infra/aws/iam.tf), drop calls it no longer makes", methods, want)
	}

	var got []string
	for _, actions := range loadModule(t, "aws").statements(t, "function") {
		for _, a := range actions {
			if (strings.HasPrefix(a, "ecs:") || strings.HasPrefix(a, "ec2:") || a == "iam:PassRole") && !slices.Contains(lambdaOwnActions, a) {
				got = append(got, a)
			}
		}
	}
	sort.Strings(got)
	got = slices.Compact(got)
	if want := union(ecsBackendActions); !slices.Equal(got, want) {
		t.Errorf("infra/aws's function policy grants %v; the ECS backend's calls need exactly %v", got, want)
	}
}

// awsTestStubs stand in for infra/aws's locals that read data sources when
// TestModules_ECSTaskDefinitionFamilies evaluates its locals.
var awsTestStubs = map[string]cty.Value{
	"partition":  cty.StringVal("aws"),
	"region":     cty.StringVal("eu-west-1"),
	"account_id": cty.StringVal("123456789012"),
}

// evalLocal evaluates local.name of m with the given variables, evaluating
// the locals it refers to first; stubs stand in for locals that read data
// sources or resources.
func (m *tfModule) evalLocal(t *testing.T, name string, vars map[string]cty.Value, stubs map[string]cty.Value) cty.Value {
	t.Helper()
	if v, ok := stubs[name]; ok {
		return v
	}
	expr := m.local(name)
	if expr == nil {
		t.Fatalf("%s: no local.%s", m.dir, name)
	}
	locals := map[string]cty.Value{}
	for _, tr := range expr.Variables() {
		if tr.RootName() != "local" || len(tr) < 2 {
			continue
		}
		if a, ok := tr[1].(hcl.TraverseAttr); ok {
			locals[a.Name] = m.evalLocal(t, a.Name, vars, stubs)
		}
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(vars), "local": cty.ObjectVal(locals)},
		Functions: map[string]function.Function{
			"flatten": stdlib.FlattenFunc, "concat": stdlib.ConcatFunc, "distinct": stdlib.DistinctFunc,
			"element": stdlib.ElementFunc, "split": stdlib.SplitFunc, "join": stdlib.JoinFunc, "coalesce": stdlib.CoalesceFunc,
			"replace": tfReplace,
		},
	}
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("%s: evaluate local.%s: %s", m.dir, name, diags.Error())
	}
	return v
}

// tfReplace is Terraform's replace: a substring wrapped in slashes is a
// regular expression (Go's, as Terraform's), anything else a plain string.
var tfReplace = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}, {Name: "substr", Type: cty.String}, {Name: "replace", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		s, sub, rep := args[0].AsString(), args[1].AsString(), args[2].AsString()
		if len(sub) > 1 && strings.HasPrefix(sub, "/") && strings.HasSuffix(sub, "/") {
			re, err := regexp.Compile(sub[1 : len(sub)-1])
			if err != nil {
				return cty.NilVal, err
			}
			return cty.StringVal(re.ReplaceAllString(s, rep)), nil
		}
		return cty.StringVal(strings.ReplaceAll(s, sub, rep)), nil
	},
})

// iamMatch reports whether an IAM resource pattern (* any run of
// characters, ? any one character) matches arn.
func iamMatch(pattern, arn string) bool {
	re := regexp.QuoteMeta(pattern)
	re = strings.ReplaceAll(re, `\*`, `.*`)
	re = strings.ReplaceAll(re, `\?`, `.`)
	return regexp.MustCompile("^" + re + "$").MatchString(arn)
}

// allowedBy reports whether any of patterns matches arn.
func allowedBy(patterns []string, arn string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return iamMatch(p, arn) })
}

// TestModules_ECSTaskDefinitionFamilies checks that infra/aws's RunTask
// statement names only the task definition families the module is told
// about (local.ecs_task_definition_arns, from var.ecs_task_definition_families
// or by default the families pushpool registers for work_pools), that tag on
// creation is confined to the same families, and what those ARNs are.
func TestModules_ECSTaskDefinitionFamilies(t *testing.T) {
	t.Parallel()
	m := loadModule(t, "aws")
	const arnsLocal = "local.ecs_task_definition_arns"
	var runTask, tagging int
	for st, actions := range m.statements(t, "function") {
		res := st.Attributes["resources"]
		if slices.Contains(actions, "ecs:RunTask") {
			runTask++
			if !slices.Equal(actions, []string{"ecs:RunTask"}) {
				t.Errorf("infra/aws: ecs:RunTask shares a statement with %v; give it its own, scoped to the families", actions)
			}
			if res == nil || !slices.Equal(refs(res.Expr), []string{arnsLocal}) || len(literals(res.Expr)) != 0 {
				t.Errorf("infra/aws: the ecs:RunTask statement's resources must be exactly %s, the family ARNs", arnsLocal)
			}
			cluster := false
			for _, c := range blocksOf(st, "condition") {
				if v, _ := staticStrings(c.Attributes["variable"].Expr); slices.Equal(v, []string{"ecs:cluster"}) && slices.Equal(refs(c.Attributes["values"].Expr), []string{"var.ecs_cluster_arns"}) {
					cluster = true
				}
			}
			if !cluster {
				t.Errorf("infra/aws: ecs:RunTask needs an ecs:cluster condition on var.ecs_cluster_arns")
			}
		}
		if slices.Contains(actions, "ecs:TagResource") {
			tagging++
			if v, _ := conditionValues(st, "ecs:CreateAction"); !slices.Equal(v, []string{"RegisterTaskDefinition", "RunTask"}) {
				t.Errorf("infra/aws: ecs:TagResource must be conditioned on ecs:CreateAction [RegisterTaskDefinition RunTask] (the backend only tags on creation), has %v", v)
			}
			if res == nil || !slices.Contains(refs(res.Expr), arnsLocal) {
				t.Errorf("infra/aws: ecs:TagResource must name the task definition families through %s", arnsLocal)
			}
			for _, s := range literals(res.Expr) {
				if strings.Contains(s, "task-definition/") {
					t.Errorf("infra/aws: ecs:TagResource names task definitions %q outside %s", s, arnsLocal)
				}
			}
		}
	}
	if runTask != 1 || tagging != 1 {
		t.Fatalf("infra/aws: want one ecs:RunTask and one ecs:TagResource statement, found %d and %d", runTask, tagging)
	}

	// What pushpool registers: prefect_<pool>_<deployment id, else flow id>.
	_, files := parseGoPackage(t, filepath.Join("..", "dispatch", "backend", "ecs"))
	prefix, ok := stringConst(files, "defaultFamily")
	if !ok {
		t.Fatalf("dispatch/backend/ecs has no defaultFamily constant: find how it names task definition families and update this test and infra/aws's default")
	}
	const (
		acct  = "arn:aws:ecs:eu-west-1:123456789012:task-definition/"
		depID = "0f6d3c57-58f4-4b8c-9c6e-0c2b8b7e4d21"
	)
	list := func(s ...string) cty.Value {
		vals := make([]cty.Value, len(s))
		for i, v := range s {
			vals[i] = cty.StringVal(v)
		}
		return cty.ListVal(vals)
	}
	tests := []struct {
		name     string
		pools    []string
		families cty.Value
		want     []string
		allowed  []string // task definition references (family:revision) RunTask may name
		refused  []string
	}{
		{
			name: "default: the families pushpool registers", pools: []string{"ecs-a", "ecs-b"},
			families: cty.NullVal(cty.List(cty.String)),
			want: []string{
				acct + "prefect_ecs-a_????????-????-????-????-????????????",
				acct + "prefect_ecs-a_????????-????-????-????-????????????:*",
				acct + "prefect_ecs-b_????????-????-????-????-????????????",
				acct + "prefect_ecs-b_????????-????-????-????-????????????:*",
			},
			allowed: []string{prefix + "_ecs-a_" + depID + ":1", prefix + "_ecs-a_" + depID + ":42", prefix + "_ecs-b_" + depID + ":3", prefix + "_ecs-a_" + depID},
			// Another pool, a pool whose name extends a served one ("ecs-a_x"
			// is not "ecs-a"), ids that are not UUIDs, other families.
			refused: []string{"other:1", prefix + "_ecs-c_" + depID + ":1", prefix + "_ecs-a_x_" + depID + ":1",
				prefix + "_ecs-a_" + depID + "x:1", prefix + "_ecs-a_" + depID[:35] + ":1", prefix + "_ecs-a:1"},
		},
		{
			name: "default, a pool name a family cannot hold", pools: []string{"prod.ecs nightly"},
			families: cty.NullVal(cty.List(cty.String)),
			want: []string{
				acct + "prefect_prod-ecs-nightly_????????-????-????-????-????????????",
				acct + "prefect_prod-ecs-nightly_????????-????-????-????-????????????:*",
			},
			allowed: []string{prefix + "_prod-ecs-nightly_" + depID + ":1"},
			refused: []string{prefix + "_prod-ecs_" + depID + ":1"},
		},
		{
			name: "families given", pools: []string{"ecs-a"},
			families: list("flows", "team-*"),
			want:     []string{acct + "flows", acct + "flows:*", acct + "team-*", acct + "team-*:*"},
			allowed:  []string{"flows:7", "team-x:1", "flows"},
			refused:  []string{prefix + "_ecs-a_" + depID + ":1", "flowsx:1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]cty.Value{"work_pools": list(tc.pools...), "ecs_task_definition_families": tc.families}
			v := m.evalLocal(t, "ecs_task_definition_arns", vars, awsTestStubs)
			var got []string
			for it := v.ElementIterator(); it.Next(); {
				_, e := it.Element()
				got = append(got, e.AsString())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("local.ecs_task_definition_arns = %q, want %q", got, tc.want)
			}
			for _, ref := range tc.allowed {
				if !allowedBy(got, acct+ref) {
					t.Errorf("RunTask of %s is refused; it must be allowed", ref)
				}
			}
			for _, ref := range tc.refused {
				if allowedBy(got, acct+ref) {
					t.Errorf("RunTask of %s is allowed; it must be refused", ref)
				}
			}
			if allowedBy(got, "arn:aws:ecs:eu-west-1:210987654321:task-definition/"+tc.allowed[0]) {
				t.Errorf("RunTask of another account's task definition is allowed")
			}
		})
	}

	// The family of a real task of the ECS backend's test data (pool
	// "ecs-pool") is covered by the default.
	td, _ := filepath.Glob(filepath.Join("..", "dispatch", "backend", "ecs", "testdata", "task-state-change-*.json"))
	group := regexp.MustCompile(`"group":\s*"family:([^"]+)"`)
	var seen int
	arns := m.evalLocal(t, "ecs_task_definition_arns", map[string]cty.Value{
		"work_pools": list("ecs-pool"), "ecs_task_definition_families": cty.NullVal(cty.List(cty.String)),
	}, awsTestStubs)
	var patterns []string
	for it := arns.ElementIterator(); it.Next(); {
		_, e := it.Element()
		patterns = append(patterns, e.AsString())
	}
	for _, p := range td {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, mm := range group.FindAllSubmatch(b, -1) {
			seen++
			if fam := string(mm[1]); !allowedBy(patterns, acct+fam+":1") {
				t.Errorf("%s: family %s of pool ecs-pool is not covered by the default %v", p, fam, patterns)
			}
		}
	}
	if seen == 0 {
		t.Errorf("dispatch/backend/ecs/testdata/task-state-change-*.json hold no \"group\": \"family:...\": the default family pattern is checked against nothing real")
	}
}

// TestModules_GCPCloudRunRole checks infra/gcp's default Cloud Run role: a
// custom role holding exactly the permissions of the Cloud Run calls
// dispatch/backend/cloudrun makes (cloudRunPermissions, checked against the
// calls in its source and the permissions its errors name), granted on the
// jobs project unless var.cloud_run_role names another role; actAs stays a
// grant on each job service account.
func TestModules_GCPCloudRunRole(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "dispatch", "backend", "cloudrun")
	_, files := parseGoPackage(t, dir)
	calls := clientCalls(files, "cloud.google.com/go/run/apiv2")
	if want := sortedKeys(cloudRunPermissions); !slices.Equal(calls, want) {
		t.Errorf("dispatch/backend/cloudrun calls %v; cloudRunPermissions documents %v: map every new call to its permissions, drop calls it no longer makes", calls, want)
	}
	want := union(cloudRunPermissions)

	// The backend's own table (errors.go: call{verb, permission}) names the
	// permission it reports on PermissionDenied; each must be in the role.
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			cl, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			if id, ok := cl.Type.(*ast.Ident); !ok || id.Name != "call" || len(cl.Elts) != 2 {
				return true
			}
			if lit, ok := cl.Elts[1].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				p, _ := strconv.Unquote(lit.Value)
				if !slices.Contains(want, p) {
					t.Errorf("dispatch/backend/cloudrun names the permission %s for a call; cloudRunPermissions does not grant it", p)
				}
			}
			return true
		})
	}

	m := loadModule(t, "gcp")
	roles := m.topBlocks("resource", "google_project_iam_custom_role", "cloud_run_jobs")
	if len(roles) != 1 {
		t.Fatalf("infra/gcp: no google_project_iam_custom_role.cloud_run_jobs")
	}
	perms := roles[0].Body.Attributes["permissions"]
	got, ok := []string(nil), false
	if perms != nil {
		got, ok = staticStrings(perms.Expr)
	}
	if !ok {
		t.Fatalf("infra/gcp: google_project_iam_custom_role.cloud_run_jobs.permissions must be a literal list")
	}
	if !slices.Equal(got, want) {
		t.Errorf("infra/gcp: the Cloud Run role holds %v; the backend's calls need exactly %v (sorted)", got, want)
	}
	if a := roles[0].Body.Attributes["project"]; a == nil || !slices.Equal(refs(a.Expr), []string{"local.jobs_project_id"}) {
		t.Errorf("infra/gcp: the Cloud Run role must be created in local.jobs_project_id")
	}
	if a := roles[0].Body.Attributes["count"]; a == nil || !slices.Contains(refs(a.Expr), "var.cloud_run_role") {
		t.Errorf("infra/gcp: the Cloud Run role must be created only when var.cloud_run_role is null")
	}

	members := m.topBlocks("resource", "google_project_iam_member", "function_cloud_run")
	if len(members) != 1 {
		t.Fatalf("infra/gcp: no google_project_iam_member.function_cloud_run")
	}
	r := refs(members[0].Body.Attributes["role"].Expr)
	if !slices.Contains(r, "var.cloud_run_role") || !slices.Contains(r, "google_project_iam_custom_role.cloud_run_jobs") {
		t.Errorf("infra/gcp: function_cloud_run's role must be var.cloud_run_role, else the custom role; refers to %v", r)
	}
	if a := members[0].Body.Attributes["project"]; a == nil || !slices.Equal(refs(a.Expr), []string{"local.jobs_project_id"}) {
		t.Errorf("infra/gcp: the Cloud Run role must be granted on local.jobs_project_id")
	}
	if b, ok := m.variables()["cloud_run_role"]; !ok {
		t.Errorf("infra/gcp: no variable cloud_run_role (users must be able to pass their own role)")
	} else if d := b.Body.Attributes["default"]; d == nil {
		t.Errorf("infra/gcp: cloud_run_role must default to null (the custom role)")
	} else if v, _ := d.Expr.Value(nil); !v.IsNull() {
		t.Errorf("infra/gcp: cloud_run_role defaults to %#v; the default must be null, meaning the custom role", v)
	}

	// actAs: on each job service account, never project-wide.
	for _, typ := range []string{"google_project_iam_member", "google_project_iam_binding"} {
		for _, b := range m.resourceBlocks(typ) {
			if a := b.Body.Attributes["role"]; a != nil && slices.Contains(literals(a.Expr), "roles/iam.serviceAccountUser") {
				t.Errorf("infra/gcp: %s.%s grants roles/iam.serviceAccountUser project-wide; grant actAs on each job service account", typ, b.Labels[1])
			}
		}
	}
	actAs := m.topBlocks("resource", "google_service_account_iam_member", "function_act_as_job")
	if len(actAs) != 1 || !slices.Equal(refs(actAs[0].Body.Attributes["for_each"].Expr), []string{"var.job_service_account_emails"}) {
		t.Errorf("infra/gcp: google_service_account_iam_member.function_act_as_job must grant actAs for_each var.job_service_account_emails")
	}
}
