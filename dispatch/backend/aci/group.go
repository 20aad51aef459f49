package aci

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"
)

// isSecretEnv tells the variables passed as secureValue, which ACI never
// echoes back nor shows in the portal: those Prefect's worker passes so (the
// API key and auth string) and the client's custom headers, which jobs get
// from the dispatcher's settings and which often carry a proxy's
// credentials. Names are compared upper case (Prefect reads its settings
// case-insensitively).
func isSecretEnv(name string) bool {
	switch strings.ToUpper(name) {
	case "PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "PREFECT_CLIENT_CUSTOM_HEADERS":
		return true
	}
	return false
}

// Tags pushpool puts on the container groups it creates, besides the job's
// labels. Azure forbids "/" in tag names, so dispatch.LabelAttempt becomes
// "pushpool.io_attempt", as Prefect's prefect.io/flow-run-id label becomes
// "prefect.io_flow-run-id".
const (
	// keepTag marks a group whose job set keep_container_group, so that
	// Stop, which only has the infrastructure id, stops it instead of
	// deleting it, and Sweep leaves it alone.
	keepTag = "pushpool.keep-container-group"
	// managedTag ("true") marks a group pushpool created; Sweep deletes only
	// those.
	managedTag = "pushpool.io_managed"
	// attemptTag carries the attempt's Token (dispatch.Attempt.Token), which
	// Status reports the attempt of.
	attemptTag = "pushpool.io_attempt"
	// createdTag is when Start created the group (RFC 3339, UTC): Sweep
	// skips groups younger than SweepAfter without reading them, and dates
	// a failed provisioning by it.
	createdTag = "pushpool.io_created"
)

// spec is what Start needs from a job configuration.
type spec struct {
	Subscription, ResourceGroup string
	Location                    string
	Image                       string
	Credentials                 *clientSecret // nil: the backend's credential
	Keep                        bool
	config                      map[string]any
}

// clientSecret is the service principal of an aci_credentials block.
type clientSecret struct{ ClientID, TenantID, Secret string }

// parseSpec reads the fields Start needs and checks them.
func parseSpec(cfg map[string]any, defaults Config) (spec, error) {
	s := spec{config: cfg}
	var err error
	get := func(field string) string {
		v, e := optString(cfg, field)
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	s.Subscription = get("subscription_id")
	s.ResourceGroup = get("resource_group_name")
	s.Location = get("location")
	s.Image = get("image")
	if err != nil {
		return s, err
	}
	if s.Subscription == "" {
		s.Subscription = defaults.SubscriptionID
	}
	if s.ResourceGroup == "" {
		s.ResourceGroup = defaults.ResourceGroup
	}
	if s.Subscription == "" {
		return s, errors.New("the job configuration has no subscription_id and the backend no default SubscriptionID: set the subscription_id job variable")
	}
	if s.ResourceGroup == "" {
		return s, errors.New("the job configuration has no resource_group_name and the backend no default ResourceGroup: set the resource_group_name job variable")
	}
	if s.Location == "" {
		s.Location = defaults.Location
	}
	if s.Image == "" {
		s.Image = defaults.DefaultImage
	}
	s.Keep = truthy(cfg["keep_container_group"])
	if creds, ok := cfg["aci_credentials"].(map[string]any); ok {
		cs := clientSecret{}
		cs.ClientID, _ = creds["client_id"].(string)
		cs.TenantID, _ = creds["tenant_id"].(string)
		cs.Secret, _ = creds["client_secret"].(string)
		switch n := countNonEmpty(cs.ClientID, cs.TenantID, cs.Secret); n {
		case 0:
		case 3:
			s.Credentials = &cs
		default:
			return s, errors.New("aci_credentials sets only some of client_id, tenant_id and client_secret: set all three for a service principal, or none to use the dispatcher's own Azure identity")
		}
	}
	return s, nil
}

func countNonEmpty(ss ...string) int {
	n := 0
	for _, s := range ss {
		if s != "" {
			n++
		}
	}
	return n
}

// buildGroup builds the container group Prefect's worker would deploy for
// the configuration: the first resource of its arm_template, prepared as
// AzureContainerJobConfiguration.prepare_for_flow_run prepares it (env as
// environmentVariables with secrets as secureValue, entrypoint + command as
// a list, the image, registry credentials, user-assigned identities,
// subnets, DNS servers), with its ARM template expressions evaluated.
// Beyond the worker, it adds the GPU request of gpu_count/gpu_sku (which
// prefect-azure 0.4.13 accepts but never uses) and tags: the job's labels,
// then the template's own tags, then own (pushpool's, which win); labels
// give way when the three exceed Azure's 50. Every PREFECT_API_KEY and
// PREFECT_API_AUTH_STRING of every container and init container ends up a
// secureValue, wherever it came from (secureEnv).
func buildGroup(s spec, name string, own map[string]string) (armcontainerinstance.ContainerGroup, error) {
	var group armcontainerinstance.ContainerGroup
	res, params, err := armResource(s.config)
	if err != nil {
		return group, err
	}
	props, _ := res["properties"].(map[string]any)
	if props == nil {
		return group, errors.New("the arm_template's container group has no properties")
	}
	containers, _ := props["containers"].([]any)
	if len(containers) == 0 {
		return group, errors.New("the arm_template's container group has no containers: Prefect's worker expects exactly one")
	}
	container, _ := containers[0].(map[string]any)
	cprops, _ := container["properties"].(map[string]any)
	if cprops == nil {
		cprops = map[string]any{}
		container["properties"] = cprops
	}

	env, err := environment(s.config["env"])
	if err != nil {
		return group, err
	}
	cprops["environmentVariables"] = env

	if cmd, _ := s.config["command"].(string); cmd != "" {
		argv, err := splitCommand(cmd)
		if err != nil {
			return group, fmt.Errorf("the command %q cannot be split into arguments as Prefect does (shlex): %w", cmd, err)
		}
		cprops["command"] = toAny(argv)
	}
	cprops["image"] = s.Image
	if ep, _ := s.config["entrypoint"].(string); ep != "" {
		cmd, _ := cprops["command"].([]any)
		cprops["command"] = append([]any{ep}, cmd...)
	}
	if reg, ok := s.config["image_registry"].(map[string]any); ok && len(reg) > 0 {
		cred, err := registryCredential(reg)
		if err != nil {
			return group, err
		}
		props["imageRegistryCredentials"] = []any{cred}
	}
	if ids := stringList(s.config["identities"]); len(ids) > 0 {
		uai := map[string]any{}
		for _, id := range ids {
			uai[id] = map[string]any{}
		}
		res["identity"] = map[string]any{"type": "UserAssigned", "userAssignedIdentities": uai}
	}
	if subnets := stringList(s.config["subnet_ids"]); len(subnets) > 0 {
		list := make([]any, len(subnets))
		for i, id := range subnets {
			list[i] = map[string]any{"id": id}
		}
		props["subnetIds"] = list
	}
	if dns := stringList(s.config["dns_servers"]); len(dns) > 0 {
		props["dnsConfig"] = map[string]any{"nameServers": toAny(dns)}
	}
	if n, ok := intValue(s.config["gpu_count"]); ok && n > 0 {
		resources := mapAt(cprops, "resources")
		requests := mapAt(resources, "requests")
		gpu := map[string]any{"count": n}
		if sku, _ := s.config["gpu_sku"].(string); sku != "" {
			gpu["sku"] = sku
		}
		requests["gpu"] = gpu
	}

	params.values["container_group_name"] = name
	params.values["container_name"] = name
	params.values["location"] = s.Location
	evaluated, err := params.evaluate(res, s)
	if err != nil {
		return group, err
	}
	res = evaluated.(map[string]any)
	coerceNumbers(res)
	for _, k := range []string{"type", "apiVersion", "dependsOn", "condition", "comments"} {
		delete(res, k)
	}
	res["name"] = name
	if loc, _ := res["location"].(string); loc == "" {
		return group, fmt.Errorf("no location for container group %s: ARM would use the resource group's location ([resourceGroup().location]), which pushpool does not look up; set the backend's Location or add a location job variable", name)
	}

	fixed := map[string]any{}
	if t, ok := res["tags"].(map[string]any); ok {
		for k, v := range t {
			fixed[k] = v
		}
	}
	for k, v := range own {
		fixed[k] = v
	}
	if s.Keep {
		fixed[keepTag] = "true"
	}
	labels := map[string]string{}
	if m, ok := s.config["labels"].(map[string]any); ok {
		for k, v := range m {
			labels[k] = fmt.Sprint(v)
		}
	}
	tags := map[string]any{}
	for k, v := range tagsFromLabels(labels, maxTags-len(fixed)) {
		tags[k] = v
	}
	for k, v := range fixed {
		tags[k] = v
	}
	res["tags"] = tags

	data, err := json.Marshal(res)
	if err != nil {
		return group, fmt.Errorf("encode the container group: %w", err)
	}
	if err := json.Unmarshal(data, &group); err != nil {
		return group, fmt.Errorf("the arm_template's container group does not match the ACI API's ContainerGroup: %w", err)
	}
	secureEnv(group)
	return group, nil
}

// secureEnv turns every secret variable (isSecretEnv) of every container and
// init container into a secureValue, so that no path — the job's env, an
// environmentVariables entry of the arm_template (a sidecar's, an init
// container's), a value from a template parameter — leaves one readable.
func secureEnv(g armcontainerinstance.ContainerGroup) {
	p := g.Properties
	if p == nil {
		return
	}
	var envs [][]*armcontainerinstance.EnvironmentVariable
	for _, c := range p.Containers {
		if c != nil && c.Properties != nil {
			envs = append(envs, c.Properties.EnvironmentVariables)
		}
	}
	for _, c := range p.InitContainers {
		if c != nil && c.Properties != nil {
			envs = append(envs, c.Properties.EnvironmentVariables)
		}
	}
	for _, env := range envs {
		for _, e := range env {
			if e == nil || e.Name == nil || !isSecretEnv(*e.Name) {
				continue
			}
			if e.Value != nil {
				if e.SecureValue == nil {
					e.SecureValue = e.Value
				}
				e.Value = nil
			}
		}
	}
}

// armResource returns a copy of the arm_template's first resource, which
// must be the only one and a container group, and the template's parameters.
func armResource(cfg map[string]any) (map[string]any, *armParams, error) {
	tmpl, ok := cfg["arm_template"].(map[string]any)
	if !ok {
		return nil, nil, errors.New("the job configuration has no arm_template object: restore it from the default base job template of azure-container-instance pools")
	}
	tmpl = deepCopy(tmpl).(map[string]any)
	resources, _ := tmpl["resources"].([]any)
	if len(resources) != 1 {
		return nil, nil, fmt.Errorf("the arm_template has %d resources; pushpool creates exactly one, the container group: create other resources beforehand and reference them", len(resources))
	}
	res, _ := resources[0].(map[string]any)
	if t, _ := res["type"].(string); !strings.EqualFold(t, "Microsoft.ContainerInstance/containerGroups") {
		return nil, nil, fmt.Errorf("the arm_template's resource has type %q; it must be Microsoft.ContainerInstance/containerGroups", t)
	}
	p := &armParams{values: map[string]any{}, defaults: map[string]any{}}
	if params, ok := tmpl["parameters"].(map[string]any); ok {
		for k, v := range params {
			if m, ok := v.(map[string]any); ok {
				if d, ok := m["defaultValue"]; ok {
					p.defaults[k] = d
				}
				p.declared = append(p.declared, k)
			}
		}
	}
	return res, p, nil
}

// armParams evaluates the few ARM template expressions the ACI worker's
// templates use.
type armParams struct {
	declared []string
	values   map[string]any // supplied by pushpool
	defaults map[string]any // defaultValue of each parameter
}

var (
	paramExpr = regexp.MustCompile(`^parameters\('([^']+)'\)$`)
)

// evaluate replaces every "[expression]" string in v. It understands
// parameters('name'), resourceGroup().name, resourceGroup().location and
// subscription().subscriptionId; "[[" escapes a literal "[".
func (p *armParams) evaluate(v any, s spec) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			r, err := p.evaluate(e, s)
			if err != nil {
				return nil, err
			}
			x[k] = r
		}
		return x, nil
	case []any:
		for i, e := range x {
			r, err := p.evaluate(e, s)
			if err != nil {
				return nil, err
			}
			x[i] = r
		}
		return x, nil
	case string:
		return p.expression(x, s, 0)
	}
	return v, nil
}

func (p *armParams) expression(str string, s spec, depth int) (any, error) {
	if strings.HasPrefix(str, "[[") {
		return str[1:], nil
	}
	if !strings.HasPrefix(str, "[") || !strings.HasSuffix(str, "]") {
		return str, nil
	}
	if depth > 8 {
		return nil, fmt.Errorf("the arm_template's parameters refer to each other in a loop at %q", str)
	}
	expr := strings.TrimSpace(str[1 : len(str)-1])
	switch {
	case expr == "resourceGroup().name":
		return s.ResourceGroup, nil
	case expr == "resourceGroup().location":
		return s.Location, nil
	case expr == "subscription().subscriptionId":
		return s.Subscription, nil
	}
	if m := paramExpr.FindStringSubmatch(expr); m != nil {
		name := m[1]
		declared := false
		for _, d := range p.declared {
			declared = declared || d == name
		}
		if !declared {
			return nil, fmt.Errorf("the arm_template uses parameters('%s') but declares no such parameter", name)
		}
		if v, ok := p.values[name]; ok {
			return v, nil
		}
		if d, ok := p.defaults[name]; ok {
			if ds, ok := d.(string); ok {
				return p.expression(ds, s, depth+1)
			}
			return d, nil
		}
		return nil, fmt.Errorf("the arm_template's parameter %q has no defaultValue and pushpool supplies only container_group_name, container_name and location", name)
	}
	return nil, fmt.Errorf("the arm_template uses the ARM expression %q, which pushpool cannot evaluate (it creates the container group directly, not through an ARM deployment): replace it with a literal or a {{ placeholder }}; supported are parameters('...'), resourceGroup().name, resourceGroup().location and subscription().subscriptionId", str)
}

// environment is the worker's environmentVariables list, sorted by name.
func environment(v any) ([]any, error) {
	env, _ := v.(map[string]any)
	names := make([]string, 0, len(env))
	for k, val := range env {
		if val != nil {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	out := make([]any, 0, len(names))
	for _, k := range names {
		val := env[k]
		str, ok := val.(string)
		if !ok {
			str = fmt.Sprint(val)
		}
		if isSecretEnv(k) {
			out = append(out, map[string]any{"name": k, "secureValue": str})
		} else {
			out = append(out, map[string]any{"name": k, "value": str})
		}
	}
	return out, nil
}

// registryCredential is the worker's imageRegistryCredentials entry: an
// ACRManagedIdentity (registry_url + identity) or DockerRegistryCredentials
// (registry_url + username + password).
func registryCredential(reg map[string]any) (map[string]any, error) {
	server, _ := reg["registry_url"].(string)
	if server == "" {
		return nil, errors.New("image_registry has no registry_url: set it to the registry host, e.g. myregistry.azurecr.io")
	}
	if identity, _ := reg["identity"].(string); identity != "" {
		return map[string]any{"server": server, "identity": identity}, nil
	}
	user, _ := reg["username"].(string)
	pass, _ := reg["password"].(string)
	if user == "" || pass == "" {
		return nil, fmt.Errorf("image_registry for %s has neither an identity (ACRManagedIdentity) nor a username and password (DockerRegistryCredentials)", server)
	}
	return map[string]any{"server": server, "username": user, "password": pass}, nil
}

// coerceNumbers turns numeric strings in the containers' resource requests
// and limits into numbers, as ARM's template engine accepts them and the ACI
// API's models do not.
func coerceNumbers(res map[string]any) {
	props, _ := res["properties"].(map[string]any)
	containers, _ := props["containers"].([]any)
	for _, c := range containers {
		cm, _ := c.(map[string]any)
		cp, _ := cm["properties"].(map[string]any)
		r, _ := cp["resources"].(map[string]any)
		for _, part := range []string{"requests", "limits"} {
			m, _ := r[part].(map[string]any)
			for _, k := range []string{"cpu", "memoryInGB"} {
				if str, ok := m[k].(string); ok {
					if f, err := strconv.ParseFloat(strings.TrimSpace(str), 64); err == nil {
						m[k] = f
					}
				}
			}
			if g, ok := m["gpu"].(map[string]any); ok {
				if str, ok := g["count"].(string); ok {
					if n, err := strconv.Atoi(strings.TrimSpace(str)); err == nil {
						g["count"] = n
					}
				}
			}
		}
	}
}

func mapAt(m map[string]any, k string) map[string]any {
	v, ok := m[k].(map[string]any)
	if !ok {
		v = map[string]any{}
		m[k] = v
	}
	return v
}

func optString(cfg map[string]any, field string) (string, error) {
	switch v := cfg[field].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	default:
		return "", fmt.Errorf("job configuration field %s is %T, want a string", field, v)
	}
}

func stringList(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, e := range list {
		if s, ok := e.(string); ok && s != "" {
			out = append(out, s)
		}
	}
	return out
}

func intValue(v any) (int, bool) {
	switch x := v.(type) {
	case json.Number:
		n, err := strconv.Atoi(x.String())
		return n, err == nil
	case float64:
		return int(x), true
	case int:
		return x, true
	case string:
		n, err := strconv.Atoi(x)
		return n, err == nil
	}
	return 0, false
}

func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		b, _ := strconv.ParseBool(x)
		return b
	}
	return false
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}

// splitCommand splits a command as Python's shlex.split(posix=True) does,
// which is how Prefect's command_from_string turns the command into argv on
// Linux: whitespace separates words; single quotes keep everything
// literally; in double quotes a backslash escapes only " and \;
// outside quotes a backslash escapes the next character.
func splitCommand(s string) ([]string, error) {
	var (
		words   []string
		cur     strings.Builder
		inWord  bool
		quoting rune
	)
	runes := []rune(s)
	for i := 0; i < len(runes); i++ {
		r := runes[i]
		switch {
		case quoting == '\'':
			if r == '\'' {
				quoting = 0
			} else {
				cur.WriteRune(r)
			}
		case quoting == '"':
			switch {
			case r == '"':
				quoting = 0
			case r == '\\' && i+1 < len(runes) && (runes[i+1] == '"' || runes[i+1] == '\\'):
				i++
				cur.WriteRune(runes[i])
			default:
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quoting, inWord = r, true
		case r == '\\':
			if i+1 >= len(runes) {
				return nil, errors.New("no escaped character")
			}
			i++
			cur.WriteRune(runes[i])
			inWord = true
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoting != 0 {
		return nil, errors.New("no closing quotation")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
