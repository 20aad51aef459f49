package cloudrun

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/template"
)

// defaultRegion is prefect-gcp's default region.
const defaultRegion = "us-central1"

// defaultImage is the image Prefect's worker sets when the job body has
// none: docker.io/prefecthq/prefect:<version>-python<worker's python>.
// pushpool has no Python, so it names Prefect's default Python version.
var defaultImage = "docker.io/prefecthq/prefect:" + template.PrefectVersion + "-python3.12"

// spec is what Start and Find need from one job configuration.
type spec struct {
	project, region string
	keepJob         bool
	name            string // the Cloud Run job id
	token           string // its start_execution_token: the attempt key
	attemptLabel    string // the value of its LabelAttempt label
	image           string
	body            map[string]any // prepared job body, REST JSON shape
	job             *runpb.Job
	creds           credentials
}

// credentials is the configuration's GcpCredentials block.
type credentials struct {
	info    []byte // service_account_info as JSON
	file    string // service_account_file
	email   string // client_email of the service account, when known
	project string
}

// key identifies the clients these credentials need.
func (c credentials) key() string {
	switch {
	case c.info != nil:
		return "info:" + string(c.info)
	case c.file != "":
		return "file:" + c.file
	}
	return ""
}

// identity names who calls Cloud Run, for error messages.
func (c credentials) identity() string {
	switch {
	case c.email != "":
		return "service account " + c.email
	case c.file != "":
		return "the service account in " + c.file
	}
	return "the dispatcher's Application Default Credentials"
}

// parseSpec reads and prepares a job configuration for attempt a, with the
// backend's defaults c. Its errors are permanent: the configuration is
// wrong.
func parseSpec(cfg map[string]any, a dispatch.Attempt, c Config) (*spec, error) {
	s := &spec{region: defaultRegion}
	var err error
	if s.creds, err = parseCredentials(cfg["credentials"]); err != nil {
		return nil, err
	}
	s.project = firstNonEmpty(s.creds.project, c.Project)
	if s.project == "" {
		return nil, errors.New("no GCP project: set project in the credentials block of the job configuration, or the dispatcher's Cloud Run project")
	}
	if v, ok := cfg["region"]; ok && v != nil {
		if s.region, ok = v.(string); !ok || s.region == "" {
			return nil, fmt.Errorf("job configuration field region is %v; want a Cloud Run region such as us-central1", v)
		}
	}
	if s.keepJob, err = boolOf(cfg["keep_job"]); err != nil {
		return nil, fmt.Errorf("job configuration field keep_job: %w", err)
	}
	name, _ := cfg["name"].(string)
	s.token = a.Key()
	s.name = JobName(name, a.FlowRunID, s.token)
	if s.body, err = prepareJobBody(cfg, envSecrets{apiKey: c.APIKeySecret.selector(), authString: c.AuthStringSecret.selector()}); err != nil {
		return nil, err
	}
	_, s.attemptLabel, _ = sanitizeLabel(LabelAttempt, a.Token())
	labels := s.body["labels"].(map[string]any)
	labels[LabelManaged] = "true"
	labels[LabelAttempt] = s.attemptLabel
	if s.keepJob {
		labels[LabelKeepJob] = "true"
	}
	// The execution takes its labels from the template: they say whose it is.
	s.body["template"].(map[string]any)["labels"].(map[string]any)[LabelAttempt] = s.attemptLabel
	s.image, _ = container0(s.body)["image"].(string)
	if s.job, err = toProto(s.body); err != nil {
		return nil, err
	}
	s.job.CreateExecution = &runpb.Job_StartExecutionToken{StartExecutionToken: s.token}
	return s, nil
}

func parseCredentials(v any) (credentials, error) {
	var c credentials
	if v == nil {
		return c, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return c, fmt.Errorf("job configuration field credentials is a %T; want a GcpCredentials block", v)
	}
	c.project, _ = m["project"].(string)
	c.file, _ = m["service_account_file"].(string)
	var info map[string]any
	switch i := m["service_account_info"].(type) {
	case nil:
	case map[string]any:
		info = i
	case string:
		if err := json.Unmarshal([]byte(i), &info); err != nil {
			return c, fmt.Errorf("credentials.service_account_info is not a JSON key file: %w", err)
		}
	default:
		return c, fmt.Errorf("credentials.service_account_info is a %T; want the service account's JSON key", i)
	}
	if info != nil {
		if c.file != "" {
			return c, errors.New("credentials: set only one of service_account_info and service_account_file")
		}
		raw, err := json.Marshal(info)
		if err != nil {
			return c, fmt.Errorf("credentials.service_account_info: %w", err)
		}
		c.info = raw
		c.email, _ = info["client_email"].(string)
		if c.project == "" {
			c.project, _ = info["project_id"].(string)
		}
	}
	return c, nil
}

// prepareJobBody is CloudRunWorkerJobV2Configuration.prepare_for_flow_run
// after the base preparation: it returns the configuration's job_body with
// the env, labels, Cloud SQL volumes, command, args, image and timeout
// filled in and an unset vpcAccess removed. The input is not modified.
// defaults are the dispatcher's secrets for the Prefect API key and auth
// string, used when the configuration names none.
func prepareJobBody(cfg map[string]any, defaults envSecrets) (map[string]any, error) {
	raw, ok := cfg["job_body"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("job configuration has no job_body object (got %T); restore it from the default cloud-run-v2 base job template", cfg["job_body"])
	}
	body := deepCopy(raw).(map[string]any)
	outer, _ := body["template"].(map[string]any)
	inner, _ := outer["template"].(map[string]any)
	containers, _ := inner["containers"].([]any)
	if inner == nil || inner["containers"] == nil {
		return nil, errors.New("job body is missing required components: /template/template/containers")
	}
	if len(containers) == 0 {
		return nil, errors.New("job body has no container in template.template.containers")
	}
	c0, ok := containers[0].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("job body container 0 is a %T; want an object", containers[0])
	}

	if err := populateEnv(cfg, c0, defaults); err != nil {
		return nil, err
	}

	labels := map[string]string{}
	if l, ok := cfg["labels"].(map[string]any); ok {
		for k, v := range l {
			labels[k] = stringOf(v)
		}
	}
	body["labels"] = toAnyMap(mergeLabels(labels, stringMap(body["labels"])))
	outer["labels"] = toAnyMap(mergeLabels(labels, stringMap(outer["labels"])))

	if sql, ok := cfg["cloudsql_instances"].([]any); ok && len(sql) > 0 {
		vols, _ := inner["volumes"].([]any)
		inner["volumes"] = append(vols, map[string]any{"name": "cloudsql", "cloudSqlInstance": map[string]any{"instances": sql}})
		mounts, _ := c0["volumeMounts"].([]any)
		c0["volumeMounts"] = append(mounts, map[string]any{"name": "cloudsql", "mountPath": "/cloudsql"})
	}

	switch cmd := c0["command"].(type) {
	case nil:
		words, _ := shlexSplit(template.DefaultCommand)
		c0["command"] = toAnySlice(words)
	case string:
		words, err := shlexSplit(cmd)
		if err != nil {
			return nil, fmt.Errorf("split the command %q: %w", cmd, err)
		}
		c0["command"] = toAnySlice(words)
	}
	if args, ok := c0["args"].(string); ok {
		words, err := shlexSplit(args)
		if err != nil {
			return nil, fmt.Errorf("split the args %q: %w", args, err)
		}
		c0["args"] = toAnySlice(words)
	}
	if _, ok := c0["image"]; !ok {
		c0["image"] = defaultImage
	}

	timeout := int64(600)
	if v, ok := cfg["timeout"]; ok && v != nil {
		n, err := intOf(v)
		if err != nil || n <= 0 || n > 604800 {
			return nil, fmt.Errorf("job configuration field timeout is %v; want whole seconds from 1 to 604800 (7 days)", v)
		}
		timeout = n
	}
	inner["timeout"] = strconv.FormatInt(timeout, 10) + "s"

	if vpc, ok := inner["vpcAccess"]; ok {
		m, _ := vpc.(map[string]any)
		if connector, has := m["connector"]; len(m) == 0 || (len(m) == 1 && has && connector == nil) {
			delete(inner, "vpcAccess")
		}
	}
	return body, nil
}

// envSecrets are SecretKeySelectors ({secret, version}) for the Prefect API
// key and auth string; nil for none.
type envSecrets struct{ apiKey, authString map[string]any }

// populateEnv appends the configuration's env (sorted by name), its
// env_from_secrets and the Prefect API key and auth string secrets to the
// container's env, dropping the plaintext key or auth string when a secret
// provides it. The secrets are the configuration's prefect_api_key_secret and
// prefect_api_auth_string_secret, else defaults, unless env_from_secrets
// provides the variable.
func populateEnv(cfg, c0 map[string]any, defaults envSecrets) error {
	fromSecrets := map[string]map[string]any{}
	if m, ok := cfg["env_from_secrets"].(map[string]any); ok {
		for k, v := range m {
			sel, err := secretSelector(v)
			if err != nil {
				return fmt.Errorf("env_from_secrets.%s: %w", k, err)
			}
			fromSecrets[k] = sel
		}
	}
	apiKey, err := secretSelector(cfg["prefect_api_key_secret"])
	if err != nil {
		return fmt.Errorf("prefect_api_key_secret: %w", err)
	}
	authString, err := secretSelector(cfg["prefect_api_auth_string_secret"])
	if err != nil {
		return fmt.Errorf("prefect_api_auth_string_secret: %w", err)
	}
	if apiKey == nil && fromSecrets["PREFECT_API_KEY"] == nil {
		apiKey = defaults.apiKey
	}
	if authString == nil && fromSecrets["PREFECT_API_AUTH_STRING"] == nil {
		authString = defaults.authString
	}
	env, _ := cfg["env"].(map[string]any)
	var out []any
	for _, k := range sortedKeys(env) {
		if k == "PREFECT_API_KEY" && (apiKey != nil || fromSecrets[k] != nil) ||
			k == "PREFECT_API_AUTH_STRING" && (authString != nil || fromSecrets[k] != nil) {
			continue
		}
		if env[k] == nil {
			continue
		}
		out = append(out, map[string]any{"name": k, "value": stringOf(env[k])})
	}
	for _, k := range sortedKeys(fromSecrets) {
		out = append(out, map[string]any{"name": k, "valueSource": map[string]any{"secretKeyRef": fromSecrets[k]}})
	}
	if apiKey != nil {
		out = append(out, map[string]any{"name": "PREFECT_API_KEY", "valueSource": map[string]any{"secretKeyRef": apiKey}})
	}
	if authString != nil {
		out = append(out, map[string]any{"name": "PREFECT_API_AUTH_STRING", "valueSource": map[string]any{"secretKeyRef": authString}})
	}
	existing, _ := c0["env"].([]any)
	c0["env"] = append(existing, out...)
	return nil
}

// secretSelector reads a SecretKeySelector {secret, version}; nil for none.
func secretSelector(v any) (map[string]any, error) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("is a %T; want {\"secret\": NAME, \"version\": VERSION}", v)
	}
	secret, ok1 := m["secret"].(string)
	version, ok2 := m["version"].(string)
	if !ok1 || !ok2 {
		return nil, errors.New("needs both secret and version, as strings")
	}
	return map[string]any{"secret": secret, "version": version}, nil
}

// toProto maps a prepared job body (the REST JSON of a Job) onto runpb.Job,
// refusing fields Cloud Run does not know, as its API would.
func toProto(body map[string]any) (*runpb.Job, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode the job body: %w", err)
	}
	job := &runpb.Job{}
	if err := protojson.Unmarshal(raw, job); err != nil {
		return nil, fmt.Errorf("the job body is not a Cloud Run v2 Job (fix job_body in the pool's base job template): %w", err)
	}
	return job, nil
}

func container0(body map[string]any) map[string]any {
	outer, _ := body["template"].(map[string]any)
	inner, _ := outer["template"].(map[string]any)
	cs, _ := inner["containers"].([]any)
	if len(cs) == 0 {
		return nil
	}
	c, _ := cs[0].(map[string]any)
	return c
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = deepCopy(x)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, x := range t {
			s[i] = deepCopy(x)
		}
		return s
	}
	return v
}

func stringOf(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case nil:
		return ""
	case bool:
		if t {
			return "True"
		}
		return "False"
	}
	return fmt.Sprint(v)
}

func stringMap(v any) map[string]string {
	m, _ := v.(map[string]any)
	out := make(map[string]string, len(m))
	for k, x := range m {
		out[k] = stringOf(x)
	}
	return out
}

func toAnyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func toAnySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func intOf(v any) (int64, error) {
	switch t := v.(type) {
	case json.Number:
		return t.Int64()
	case float64:
		if t != math.Trunc(t) {
			return 0, fmt.Errorf("%v is not whole", t)
		}
		return int64(t), nil
	case int:
		return int64(t), nil
	case int64:
		return t, nil
	case string:
		return strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	}
	return 0, fmt.Errorf("%v is a %T, not a number", v, v)
}

func boolOf(v any) (bool, error) {
	switch t := v.(type) {
	case nil:
		return false, nil
	case bool:
		return t, nil
	case string:
		return strconv.ParseBool(t)
	}
	return false, fmt.Errorf("%v is a %T, not a boolean", v, v)
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
