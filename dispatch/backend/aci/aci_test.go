package aci

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/backend/aci/acifake"
	"github.com/pushpool/pushpool/dispatch/dispatchtest"
)

func TestSlugify(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"conformance-flow", "conformance-flow"},
		{"My ETL Flow", "my-etl-flow"},
		{"a very long flow name that goes on", "a-very-long-flow-na"},
		{"exactly-nineteen-ch", "exactly-nineteen-ch"},
		{"eighteen-char-name", "eighteen-char-name"},
		{"cut-at-a-dash-----x", "cut-at-a-dash-x"},
		{"abcdefghijklmnopqr-s", "abcdefghijklmnopqr"},
		{"Café déjà vu", "cafe-deja-vu"},
		{"don't stop", "don-t-stop"},
		{"1,000 rows", "1000-rows"},
		{"fish &amp; chips", "fish-chips"},
		{"__under__score__", "under-score"},
		{"日本", ""},
		{"", ""},
	} {
		if got := slugify(c.in, prefectSlugLength); got != c.want {
			t.Errorf("slugify(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestGroupName(t *testing.T) {
	t.Parallel()
	const run, key = "3886c183-c7c6-4531-a3d9-732f2c4ed8b2", "0a1b2c3d"
	for _, c := range []struct{ flow, want string }{
		{"hello", "hello-" + run + "-" + key},
		{"A Very Long Flow Name For Sure", "a-very-long-flow-" + run + "-" + key},
		{"exactly-seventeen", "exactly-seventeen-" + run + "-" + key},
		{"abcdefghijklmnop-qrs", "abcdefghijklmnop-" + run + "-" + key},
		{"日本", run + "-" + key},
	} {
		got := groupName(c.flow, run, key)
		if got != c.want {
			t.Errorf("groupName(%q) = %q, want %q", c.flow, got, c.want)
		}
		if len(got) > maxGroupName || !groupNameRE.MatchString(got) {
			t.Errorf("groupName(%q) = %q breaks ACI's name rules", c.flow, got)
		}
		if k, ok := attemptInName(got); !ok || k != key {
			t.Errorf("attemptInName(%q) = %q, %v; want %q", got, k, ok, key)
		}
		if slug := slugify(c.flow, maxSlugLength); !strings.HasPrefix(slugify(c.flow, prefectSlugLength), slug) {
			t.Errorf("the slug %q of %q is not a prefix of Prefect's %q", slug, c.flow, slugify(c.flow, prefectSlugLength))
		}
	}
	// Prefect's worker's names and pushpool's before attempts carry no key.
	for _, name := range []string{"hello-" + run, run, "hello-0a1b2c3d"} {
		if k, ok := attemptInName(name); ok {
			t.Errorf("attemptInName(%q) = %q, want none", name, k)
		}
	}
}

func TestTagsFromLabels(t *testing.T) {
	t.Parallel()
	many := map[string]string{"prefect.io/flow-run-id": "r"}
	for i := range 60 {
		many[string(rune('a'+i%26))+strings.Repeat("x", i)] = "v"
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		check  func(t *testing.T, tags map[string]string)
	}{
		{"forbidden characters", map[string]string{"prefect.io/flow-run-id": "r", `a<b>c%d&e\f?g`: "v"}, func(t *testing.T, tags map[string]string) {
			want := map[string]string{"prefect.io_flow-run-id": "r", "a_b_c_d_e_f_g": "v"}
			if !reflect.DeepEqual(tags, want) {
				t.Errorf("tags = %v, want %v", tags, want)
			}
		}},
		{"long value", map[string]string{"k": strings.Repeat("é", 300)}, func(t *testing.T, tags map[string]string) {
			if n := len([]rune(tags["k"])); n != 256 {
				t.Errorf("value has %d characters, want 256", n)
			}
		}},
		{"long name", map[string]string{strings.Repeat("n", 600): "v"}, func(t *testing.T, tags map[string]string) {
			for k := range tags {
				if len(k) != 512 {
					t.Errorf("name has %d characters, want 512", len(k))
				}
			}
		}},
		{"at most 50, prefect.io first", many, func(t *testing.T, tags map[string]string) {
			if len(tags) != 50 {
				t.Errorf("%d tags, want 50", len(tags))
			}
			if tags["prefect.io_flow-run-id"] != "r" {
				t.Errorf("the prefect.io label was dropped: %v", tags)
			}
		}},
		{"empty name dropped", map[string]string{" ": "v"}, func(t *testing.T, tags map[string]string) {
			if len(tags) != 0 {
				t.Errorf("tags = %v, want none", tags)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) { c.check(t, tagsFromLabels(c.labels, maxTags)) })
	}
}

func TestParseInfrastructureID(t *testing.T) {
	t.Parallel()
	const run, name = "3886c183-c7c6-4531-a3d9-732f2c4ed8b2", "hello-3886c183-c7c6-4531-a3d9-732f2c4ed8b2"
	full := groupRef{"sub-2", "rg-2", name}.ID()
	for _, c := range []struct {
		id, sub, rg string
		want        groupRef
		err         string
	}{
		{id: run + ":" + name, sub: "s", rg: "rg", want: groupRef{"s", "rg", name}},
		{id: full, sub: "s", rg: "rg", want: groupRef{"sub-2", "rg-2", name}},
		{id: full, want: groupRef{"sub-2", "rg-2", name}},
		{id: run + ":" + name, err: "no default SubscriptionID"},
		{id: "not-an-infrastructure-id", sub: "s", rg: "rg", err: "not-an-infrastructure-id"},
		{id: "a:b:c", sub: "s", rg: "rg", err: "a:b:c"},
		{id: run + ":Bad_Name", sub: "s", rg: "rg", err: "Bad_Name"},
		{id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm", err: "not the resource id of a container group"},
		{id: "/nonsense", err: "/nonsense"},
	} {
		got, err := parseInfrastructureID(c.id, c.sub, c.rg)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseInfrastructureID(%q) error = %v, want one containing %q", c.id, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("parseInfrastructureID(%q) = %+v, %v; want %+v", c.id, got, err, c.want)
		}
	}
}

func TestInfrastructureID(t *testing.T) {
	t.Parallel()
	const run = "3886c183-c7c6-4531-a3d9-732f2c4ed8b2"
	ref := groupRef{"Sub", "RG", "n-" + run}
	for _, c := range []struct{ sub, rg, want string }{
		{"sub", "rg", run + ":n-" + run},
		{"sub", "other", ref.ID()},
		{"", "", ref.ID()},
	} {
		got := infrastructureID(run, ref, c.sub, c.rg)
		if got != c.want {
			t.Errorf("infrastructureID with defaults %q/%q = %q, want %q", c.sub, c.rg, got, c.want)
		}
		back, err := parseInfrastructureID(got, c.sub, c.rg)
		if err != nil || !strings.EqualFold(back.ID(), ref.ID()) {
			t.Errorf("parseInfrastructureID(%q) = %+v, %v; want %+v", got, back, err, ref)
		}
	}
}

func TestSplitCommand(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want []string
		err  bool
	}{
		{in: "prefect flow-run execute", want: []string{"prefect", "flow-run", "execute"}},
		{in: `python -c 'print("hi there")'`, want: []string{"python", "-c", `print("hi there")`}},
		{in: `echo "a \"b\" \$c \\d"`, want: []string{"echo", `a "b" \$c \d`}},
		{in: `a\ b  c`, want: []string{"a b", "c"}},
		{in: `''`, want: []string{""}},
		{in: "  ", want: nil},
		{in: `"unclosed`, err: true},
		{in: `trailing\`, err: true},
	} {
		got, err := splitCommand(c.in)
		if (err != nil) != c.err || !reflect.DeepEqual(got, c.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q (error %v)", c.in, got, err, c.want, c.err)
		}
	}
}

// TestBuildGroup checks the container group built from job variables.
func TestBuildGroup(t *testing.T) {
	run := dispatchtest.NewFlowRunID()
	cfg := Config{Location: "westeurope", DefaultImage: "prefecthq/prefect:3-latest"}
	for _, c := range []struct {
		name  string
		vars  map[string]any
		check func(t *testing.T, g armcontainerinstance.ContainerGroup)
		err   string
	}{
		{name: "defaults", vars: map[string]any{}, check: func(t *testing.T, g armcontainerinstance.ContainerGroup) {
			c := g.Properties.Containers[0].Properties
			wantCmd := []string{"/opt/prefect/entrypoint.sh", "prefect", "flow-run", "execute"}
			if got := derefAll(c.Command); !reflect.DeepEqual(got, wantCmd) {
				t.Errorf("command = %q, want %q", got, wantCmd)
			}
			if *c.Image != "prefecthq/prefect:3-latest" || *g.Location != "westeurope" || *g.Properties.RestartPolicy != "Never" || *g.Properties.OSType != "Linux" {
				t.Errorf("image %s, location %s, restart policy %s, os %s", *c.Image, *g.Location, *g.Properties.RestartPolicy, *g.Properties.OSType)
			}
			if *c.Resources.Requests.CPU != 1 || *c.Resources.Requests.MemoryInGB != 1 {
				t.Errorf("requests = %+v", c.Resources.Requests)
			}
			if *g.Tags["prefect.io_flow-run-id"] != run {
				t.Errorf("tags = %v, want the flow run id tagged", g.Tags)
			}
			if cn := *g.Properties.Containers[0].Name; cn != *g.Name {
				t.Errorf("container name %q, want the group's name %q", cn, *g.Name)
			}
		}},
		{name: "secrets are secure values", vars: map[string]any{"env": map[string]any{"PREFECT_API_KEY": "pnu_x", "PREFECT_API_AUTH_STRING": "u:p",
			"PREFECT_CLIENT_CUSTOM_HEADERS": `{"Proxy-Authorization": "Basic dTpw"}`, "PLAIN": "1", "DROPPED": nil}},
			check: func(t *testing.T, g armcontainerinstance.ContainerGroup) {
				seen := map[string]bool{}
				for _, e := range g.Properties.Containers[0].Properties.EnvironmentVariables {
					seen[*e.Name] = true
					secret := *e.Name == "PREFECT_API_KEY" || *e.Name == "PREFECT_API_AUTH_STRING" || *e.Name == "PREFECT_CLIENT_CUSTOM_HEADERS"
					if secret && (e.Value != nil || e.SecureValue == nil) {
						t.Errorf("%s is not a secureValue-only variable", *e.Name)
					}
					if !secret && (e.Value == nil || e.SecureValue != nil) {
						t.Errorf("%s is not a plain value", *e.Name)
					}
				}
				if !seen["PREFECT_API_KEY"] || !seen["PREFECT_CLIENT_CUSTOM_HEADERS"] || !seen["PLAIN"] || seen["DROPPED"] || !seen["PREFECT__FLOW_RUN_ID"] {
					t.Errorf("environment variables %v", seen)
				}
			}},
		{name: "registry, identities, network, gpu", vars: map[string]any{
			"image_registry": map[string]any{"registry_url": "r.azurecr.io", "identity": "/id/1"},
			"identities":     []any{"/id/1", "/id/2"}, "subnet_ids": []any{"/subnet/1"}, "dns_servers": []any{"10.0.0.1"},
			"gpu_count": 1, "gpu_sku": "V100", "cpu": 2.5, "memory": "3", "entrypoint": nil, "command": "python -m flows",
		}, check: func(t *testing.T, g armcontainerinstance.ContainerGroup) {
			p := g.Properties
			if r := p.ImageRegistryCredentials[0]; *r.Server != "r.azurecr.io" || *r.Identity != "/id/1" || r.Username != nil {
				t.Errorf("registry credentials %+v", r)
			}
			if len(g.Identity.UserAssignedIdentities) != 2 || *g.Identity.Type != armcontainerinstance.ResourceIdentityTypeUserAssigned {
				t.Errorf("identity %+v", g.Identity)
			}
			if *p.SubnetIDs[0].ID != "/subnet/1" || *p.DNSConfig.NameServers[0] != "10.0.0.1" {
				t.Errorf("subnets %+v, dns %+v", p.SubnetIDs, p.DNSConfig)
			}
			req := p.Containers[0].Properties.Resources.Requests
			if *req.Gpu.Count != 1 || *req.Gpu.SKU != "V100" || *req.CPU != 2.5 {
				t.Errorf("requests %+v gpu %+v", req, req.Gpu)
			}
			if got := derefAll(p.Containers[0].Properties.Command); !reflect.DeepEqual(got, []string{"python", "-m", "flows"}) {
				t.Errorf("command without entrypoint = %q", got)
			}
		}},
		{name: "docker registry credentials", vars: map[string]any{"image_registry": map[string]any{"registry_url": "ghcr.io", "username": "u", "password": "p"}},
			check: func(t *testing.T, g armcontainerinstance.ContainerGroup) {
				if r := g.Properties.ImageRegistryCredentials[0]; *r.Server != "ghcr.io" || *r.Username != "u" || *r.Password != "p" {
					t.Errorf("registry credentials %+v", r)
				}
			}},
		{name: "location variable and keep", vars: map[string]any{"location": "northeurope", "keep_container_group": true},
			check: func(t *testing.T, g armcontainerinstance.ContainerGroup) {
				if *g.Location != "northeurope" || g.Tags[keepTag] == nil {
					t.Errorf("location %s tags %v", *g.Location, g.Tags)
				}
			}},
		{name: "unclosed quote", vars: map[string]any{"command": `echo "oops`}, err: "shlex"},
		{name: "partial credentials", vars: map[string]any{"aci_credentials": map[string]any{"client_id": "c"}}, err: "all three"},
		{name: "registry without secret", vars: map[string]any{"image_registry": map[string]any{"registry_url": "ghcr.io", "username": "u"}}, err: "neither an identity"},
	} {
		t.Run(c.name, func(t *testing.T) {
			vars := map[string]any{"subscription_id": "s", "resource_group_name": "rg"}
			for k, v := range c.vars {
				vars[k] = v
			}
			tmpl := DefaultBaseJobTemplate()
			if _, ok := vars["location"]; ok { // a pool that adds a location variable
				tmpl["job_configuration"].(map[string]any)["location"] = "{{ location }}"
				tmpl["variables"].(map[string]any)["properties"].(map[string]any)["location"] = map[string]any{"type": "string"}
			}
			job := dispatchtest.RenderJob(t, PoolType, tmpl, vars, run)
			s, err := parseSpec(job.Configuration, cfg)
			var g armcontainerinstance.ContainerGroup
			if err == nil {
				g, err = buildGroup(s, groupName(job.FlowName, run, "0a1b2c3d"), nil)
			}
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error = %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, g)
		})
	}
}

func TestBuildGroup_armExpressions(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{"arm_template": map[string]any{
			"parameters": map[string]any{"location": map[string]any{"defaultValue": "[resourceGroup().location]"}, "extra": map[string]any{"defaultValue": "lit"},
				"container_group_name": map[string]any{}, "container_name": map[string]any{}},
			"resources": []any{map[string]any{"type": "Microsoft.ContainerInstance/containerGroups", "name": "[parameters('container_group_name')]", "location": "[parameters('location')]",
				"tags": map[string]any{"from": "[parameters('extra')]", "rg": "[resourceGroup().name]", "esc": "[[literal]"},
				"properties": map[string]any{"osType": "Linux", "containers": []any{map[string]any{"name": "[parameters('container_name')]", "properties": map[string]any{
					"resources": map[string]any{"requests": map[string]any{"cpu": "1", "memoryInGB": 1.5}}}}}}}},
		}, "subscription_id": "s", "resource_group_name": "rg", "command": "run", "labels": map[string]any{}}
	}
	s, err := parseSpec(base(), Config{Location: "uksouth", DefaultImage: "img"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := buildGroup(s, "n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if *g.Name != "n" || *g.Location != "uksouth" || *g.Properties.Containers[0].Name != "n" || *g.Tags["from"] != "lit" || *g.Tags["rg"] != "rg" || *g.Tags["esc"] != "[literal]" {
		data, _ := json.Marshal(g)
		t.Errorf("group = %s", data)
	}
	for _, c := range []struct {
		mutate func(cfg map[string]any)
		err    string
	}{
		{func(cfg map[string]any) { res(cfg)["location"] = "[concat('a','b')]" }, "cannot evaluate"},
		{func(cfg map[string]any) { res(cfg)["location"] = "[parameters('nope')]" }, "declares no such parameter"},
		{func(cfg map[string]any) { res(cfg)["type"] = "Microsoft.Web/sites" }, "must be Microsoft.ContainerInstance/containerGroups"},
		{func(cfg map[string]any) {
			tm := cfg["arm_template"].(map[string]any)
			tm["resources"] = append(tm["resources"].([]any), map[string]any{})
		}, "2 resources"},
		{func(cfg map[string]any) { delete(cfg, "arm_template") }, "no arm_template"},
	} {
		cfg := base()
		c.mutate(cfg)
		s, err := parseSpec(cfg, Config{Location: "uksouth", DefaultImage: "img"})
		if err == nil {
			_, err = buildGroup(s, "n", nil)
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("error = %v, want one containing %q", err, c.err)
		}
	}
	// Without a location anywhere the resource group's would be needed.
	s, _ = parseSpec(base(), Config{DefaultImage: "img"})
	if _, err := buildGroup(s, "n", nil); err == nil || !strings.Contains(err.Error(), "location") {
		t.Errorf("error = %v, want one asking for a location", err)
	}
}

func res(cfg map[string]any) map[string]any {
	return cfg["arm_template"].(map[string]any)["resources"].([]any)[0].(map[string]any)
}

// groupOf is the name of the job's attempt's group.
func groupOf(job dispatch.Job) string {
	return groupName(job.FlowName, job.FlowRunID, job.Attempt.Key())
}

// armClient is a container groups client of subscription sub on az, for
// what the backend never does (PUT a group without conditions).
func armClient(t *testing.T, az *acifake.Azure, sub string) *armcontainerinstance.ContainerGroupsClient {
	t.Helper()
	opts := az.ClientOptions()
	c, err := armcontainerinstance.NewContainerGroupsClient(sub, az.Credential(), &opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func derefAll(ps []*string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = *p
	}
	return out
}

// TestStatusOf maps instance views to statuses.
func TestStatusOf(t *testing.T) {
	t.Parallel()
	finish := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	group := func(prov, groupState string, cs *armcontainerinstance.ContainerState) armcontainerinstance.ContainerGroup {
		c := &armcontainerinstance.Container{Properties: &armcontainerinstance.ContainerProperties{}}
		if cs != nil {
			c.Properties.InstanceView = &armcontainerinstance.ContainerPropertiesInstanceView{CurrentState: cs}
		}
		return armcontainerinstance.ContainerGroup{Properties: &armcontainerinstance.ContainerGroupPropertiesProperties{
			ProvisioningState: to.Ptr(prov), Containers: []*armcontainerinstance.Container{c},
			InstanceView: &armcontainerinstance.ContainerGroupPropertiesInstanceView{State: to.Ptr(groupState)},
		}}
	}
	for _, c := range []struct {
		name string
		g    armcontainerinstance.ContainerGroup
		want dispatch.Status
	}{
		{"creating", group("Creating", "Pending", nil), dispatch.Status{State: dispatch.StatePending}},
		{"waiting", group("Succeeded", "Pending", &armcontainerinstance.ContainerState{State: to.Ptr("Waiting"), DetailStatus: to.Ptr("ContainerCreating")}),
			dispatch.Status{State: dispatch.StatePending, Reason: "ContainerCreating"}},
		{"running", group("Succeeded", "Running", &armcontainerinstance.ContainerState{State: to.Ptr("Running")}), dispatch.Status{State: dispatch.StateRunning}},
		{"terminated", group("Succeeded", "Failed", &armcontainerinstance.ContainerState{State: to.Ptr("Terminated"), ExitCode: to.Ptr[int32](137), DetailStatus: to.Ptr("OOMKilled"), FinishTime: &finish}),
			dispatch.Status{State: dispatch.StateExited, ExitCode: 137, Reason: "OOMKilled", ExitedAt: finish}},
		{"terminated without code", group("Succeeded", "Failed", &armcontainerinstance.ContainerState{State: to.Ptr("Terminated")}),
			dispatch.Status{State: dispatch.StateExited, ExitCode: -1}},
		{"provisioning failed", group("Failed", "Failed", &armcontainerinstance.ContainerState{State: to.Ptr("Waiting"), DetailStatus: to.Ptr("ErrImagePull")}),
			dispatch.Status{State: dispatch.StateExited, ExitCode: -1, Reason: "container group provisioning failed: ErrImagePull"}},
		{"stopped", group("Succeeded", "Stopped", nil),
			dispatch.Status{State: dispatch.StateExited, ExitCode: -1, Reason: "container group was stopped before its container exited"}},
		{"no properties", armcontainerinstance.ContainerGroup{}, dispatch.Status{State: dispatch.StatePending}},
	} {
		if got := statusOf(c.g); got != c.want {
			t.Errorf("%s: statusOf = %+v, want %+v", c.name, got, c.want)
		}
	}
}

// TestStatus_serverErrorIsRetryable: a 503 that outlives azcore's retries
// must never read as a finished run (#22077).
func TestStatus_serverErrorIsRetryable(t *testing.T) {
	b, az := newTestBackend(t)
	id, err := b.Start(t.Context(), testJob(t, dispatchtest.NewFlowRunID(), nil))
	if err != nil {
		t.Fatal(err)
	}
	az.Inject(acifake.OpGet, acifake.ServiceUnavailable, 1)
	if st, err := b.Status(t.Context(), id); err != nil || st.State != dispatch.StateRunning {
		t.Errorf("Status after one 503 = %+v, %v; want RUNNING (azcore retries)", st, err)
	}
	az.Inject(acifake.OpGet, acifake.ServiceUnavailable, -1)
	st, err := b.Status(t.Context(), id)
	if err == nil || !errors.Is(err, dispatch.ErrRetryable) {
		t.Errorf("Status during an outage = %+v, %v; want a retryable error", st, err)
	}
	if err := b.Stop(t.Context(), id); err == nil || !errors.Is(err, dispatch.ErrRetryable) {
		t.Errorf("Stop during an outage = %v; want a retryable error", err)
	}
}

// TestStart_otherResourceGroup: a job outside the backend's defaults gets
// a full ARM resource id, which Status and Stop follow.
func TestStart_otherResourceGroup(t *testing.T) {
	b, az := newTestBackend(t)
	run := dispatchtest.NewFlowRunID()
	const sub, rg = "9f0e1d2c-3b4a-4596-8877-665544332211", "elsewhere"
	job := testJob(t, run, map[string]any{"subscription_id": sub, "resource_group_name": rg})
	id, err := b.Start(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	want := groupRef{sub, rg, groupOf(job)}.ID()
	if id != want {
		t.Fatalf("infrastructure id = %q, want %q", id, want)
	}
	if found, ok, err := b.Find(t.Context(), job); err != nil || !ok || found != id {
		t.Errorf("Find = %q, %v, %v; want %q", found, ok, err, id)
	}
	if _, ok := az.Group(sub, rg, groupOf(job)); !ok {
		t.Fatal("no group in the job's subscription and resource group")
	}
	if st, err := b.Status(t.Context(), id); err != nil || st.State != dispatch.StateRunning {
		t.Errorf("Status(%s) = %+v, %v", id, st, err)
	}
	if err := b.Stop(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if st, err := b.Status(t.Context(), id); err != nil || st.State != dispatch.StateNotFound {
		t.Errorf("Status after Stop = %+v, %v; want NOT_FOUND (deleted)", st, err)
	}
}

// TestStop_keepContainerGroup stops instead of deleting.
func TestStop_keepContainerGroup(t *testing.T) {
	b, az := newTestBackend(t)
	run := dispatchtest.NewFlowRunID()
	id, err := b.Start(t.Context(), testJob(t, run, map[string]any{"keep_container_group": true}))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if az.Calls(acifake.OpStop) != 1 || az.Calls(acifake.OpDelete) != 0 {
		t.Errorf("stop calls %d, delete calls %d; want 1 and 0", az.Calls(acifake.OpStop), az.Calls(acifake.OpDelete))
	}
	st, err := b.Status(t.Context(), id)
	if err != nil || st.State != dispatch.StateExited || st.ExitCode == 0 {
		t.Errorf("Status of a stopped group = %+v, %v; want a non-zero exit", st, err)
	}
}

// TestStart_secrets: PREFECT_API_KEY and PREFECT_API_AUTH_STRING reach ACI
// only as secure values — in the PUT body itself, from the job's env, from
// the arm_template's own entries (a sidecar, an init container, a template
// parameter) — and the GET answers never echo them.
func TestStart_secrets(t *testing.T) {
	b, az := newTestBackend(t)
	run := dispatchtest.NewFlowRunID()
	const key, auth, sidecarKey, initAuth, paramKey = "pnu_from_job_env", "user:from-job-env", "pnu_in_sidecar", "user:in-init", "pnu_from_parameter"
	tmpl := DefaultBaseJobTemplate()
	arm := tmpl["job_configuration"].(map[string]any)["arm_template"].(map[string]any)
	arm["parameters"].(map[string]any)["api_key"] = map[string]any{"type": "string", "defaultValue": paramKey}
	props := arm["resources"].([]any)[0].(map[string]any)["properties"].(map[string]any)
	resources := map[string]any{"requests": map[string]any{"cpu": 0.5, "memoryInGB": 0.5}}
	props["containers"] = append(props["containers"].([]any), map[string]any{"name": "sidecar", "properties": map[string]any{
		"image": "busybox", "resources": resources,
		"environmentVariables": []any{
			map[string]any{"name": "PREFECT_API_KEY", "value": sidecarKey},
			map[string]any{"name": "prefect_api_key_lower", "value": "not a secret"},
		}}})
	props["initContainers"] = []any{map[string]any{"name": "init", "properties": map[string]any{
		"image": "busybox",
		"environmentVariables": []any{
			map[string]any{"name": "PREFECT_API_AUTH_STRING", "value": initAuth},
			map[string]any{"name": "prefect_api_key", "value": "[parameters('api_key')]"},
		}}}}
	vars := map[string]any{"subscription_id": testSubscription, "resource_group_name": testResourceGroup, "image": testImage,
		"env": map[string]any{"PREFECT_API_KEY": key, "PREFECT_API_AUTH_STRING": auth, "PLAIN": "visible"}}
	job := dispatchtest.RenderJob(t, PoolType, tmpl, vars, run)
	job.Attempt = dispatchtest.NewAttempt(run)
	if _, err := b.Start(t.Context(), job); err != nil {
		t.Fatal(err)
	}

	puts := az.Requests(acifake.OpCreate)
	if len(puts) != 1 {
		t.Fatalf("%d PUT requests, want 1", len(puts))
	}
	var body map[string]any
	if err := json.Unmarshal(puts[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	secure := map[string]string{}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if name, ok := x["name"].(string); ok {
				if _, plain := x["value"]; plain && isSecretEnv(name) {
					t.Errorf("the PUT body sends %s as a plain value: %v", name, x)
				}
				if sv, ok := x["secureValue"].(string); ok {
					secure[sv] = name
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(body)
	for _, v := range []string{key, auth, sidecarKey, initAuth, paramKey} {
		if _, ok := secure[v]; !ok {
			t.Errorf("the secret %q is not a secureValue in the PUT body (secure values: %v)", v, secure)
		}
	}
	if !strings.Contains(string(puts[0].Body), `"value":"visible"`) || !strings.Contains(string(puts[0].Body), `"value":"not a secret"`) {
		t.Errorf("plain variables lost their value: %s", puts[0].Body)
	}

	res, err := armClient(t, az, testSubscription).Get(t.Context(), testResourceGroup, groupOf(job), nil)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(res.ContainerGroup)
	for _, v := range []string{key, auth, sidecarKey, initAuth, paramKey} {
		if strings.Contains(string(data), v) {
			t.Errorf("a GET of the group echoes the secret %q", v)
		}
	}
}

// TestStart_errorMessages checks what the permanent errors tell the user.
func TestStart_errorMessages(t *testing.T) {
	for _, c := range []struct {
		fault acifake.Fault
		words []string
	}{
		{acifake.AuthorizationFailed, []string{"Microsoft.ContainerInstance/containerGroups/write", "dispatcher's Azure identity", acifake.CallerObjectID, testSubscription}},
		{acifake.InaccessibleImage, []string{testImage, "image_registry", "InaccessibleImage"}},
	} {
		b, az := newTestBackend(t)
		run := dispatchtest.NewFlowRunID()
		az.Inject(acifake.OpCreate, c.fault, 1)
		_, err := b.Start(t.Context(), testJob(t, run, nil))
		if err == nil || errors.Is(err, dispatch.ErrRetryable) {
			t.Fatalf("%s: Start error %v, want a permanent error", c.fault, err)
		}
		for _, w := range append(c.words, run) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error does not contain %q: %v", c.fault, w, err)
			}
		}
	}
}
