package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/dispatch/template"
)

// Redacted replaces a secret in a job shown to a person.
const Redacted = "**********"

// Render returns the job a pass would start for the flow run, without
// claiming or starting anything: the same reads, validation and rendering.
// It is for showing a job to a person, so secrets are replaced by Redacted:
// values of block fields their schema marks secret, the dispatcher's API key,
// auth string and custom headers (which often carry a proxy's credentials),
// and every env variable whose name says it holds a secret (…KEY…,
// …SECRET…, …TOKEN…, …PASSWORD…, …CREDENTIAL…, …AUTH…).
func (d *Dispatcher) Render(ctx context.Context, flowRunID string) (Job, error) {
	run, err := d.api.ReadFlowRun(ctx, flowRunID)
	if err != nil {
		if prefect.IsNotFound(err) {
			return Job{}, fmt.Errorf("flow run %s does not exist at this API URL: check the id and PREFECT_API_URL: %w", flowRunID, err)
		}
		return Job{}, fmt.Errorf("read flow run %s: %w", flowRunID, err)
	}
	if run.WorkPoolName == nil || *run.WorkPoolName == "" {
		return Job{}, fmt.Errorf("flow run %s is not in a work pool, so no job is rendered for it: deploy its flow to a work pool", flowRunID)
	}
	pool, err := d.api.ReadWorkPool(ctx, *run.WorkPoolName)
	if err != nil {
		return Job{}, fmt.Errorf("read work pool %q of flow run %s: %w", *run.WorkPoolName, flowRunID, err)
	}
	p := newPass(d, pool)
	dep, flow, err := p.sources(ctx, run)
	if errors.Is(err, errDeploymentDeleted) {
		return Job{}, fmt.Errorf("%w; a dispatch pass would cancel the run", err)
	}
	if err != nil {
		return Job{}, err
	}
	secrets := &secretSet{}
	for _, k := range []string{"PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "PREFECT_CLIENT_CUSTOM_HEADERS"} {
		secrets.add(d.cfg.SettingsEnv[k])
	}
	refused := &envRefusals{}
	job, err := p.render(ctx, run, flow, dep, secrets, refused)
	for _, line := range refused.lines(pool.Name) {
		d.log.WarnContext(ctx, line, slog.String("flow_run_id", flowRunID))
	}
	if err != nil {
		return Job{}, fmt.Errorf("render the job of flow run %s from work pool %q: %w", flowRunID, pool.Name, err)
	}
	// A secret-looking env value is often copied elsewhere by the template
	// (ECS containerOverrides, ACI environmentVariables): its value is
	// redacted wherever it appears.
	secrets.addSecretEnv(job.Configuration, "")
	job.Configuration, _ = secrets.redactor().redact(job.Configuration, "").(map[string]any)
	return job, nil
}

// CheckJobVariables checks a deployment's job variables against its work
// pool before the deployment is created or changed, as early as the
// Terraform provider's plan: it validates them against the pool's variables
// schema as Prefect's server does for a deployment (required variables are
// left to the flow runs), then renders a job from them as a dispatch pass
// would for a run without job variables of its own. Blocks and Prefect
// variables the template references are read through lookups.
//
// The error is a *template.ValidationError for job variables the server or
// a dispatch pass would refuse, a *template.ConfigError for a job that
// cannot be rendered, or a *template.ResolveError for a block or variable
// placeholder that cannot be resolved (yet: it may be created later). A nil
// lookups fails every such placeholder.
func CheckJobVariables(ctx context.Context, lookups Lookups, pool prefect.WorkPool, deployment string, jobVariables map[string]any) error {
	if schema, _ := pool.BaseJobTemplate["variables"].(map[string]any); schema != nil {
		if err := template.ValidateDeployment(schema, jobVariables, pool.Name, deployment); err != nil {
			return err
		}
	}
	var r template.Resolver // nil renders templates without block or variable placeholders
	if lookups != nil {
		r = resolver{api: lookups}
	}
	in := template.Input{BaseJobTemplate: pool.BaseJobTemplate, DeploymentJobVariables: jobVariables}
	if _, err := template.Render(ctx, in, r); err != nil {
		return fmt.Errorf("render a job of deployment %q from work pool %q: %w", deployment, pool.Name, err)
	}
	return nil
}

// addSecretEnv collects the values of secret-looking variables in every env
// map (key "env" or "environment") and every [{name, value}] env list of v.
func (s *secretSet) addSecretEnv(v any, key string) {
	switch t := v.(type) {
	case map[string]any:
		if name, ok := t["name"].(string); ok && secretEnvName.MatchString(name) {
			if val, ok := t["value"].(string); ok {
				s.add(val)
			}
		}
		for k, c := range t {
			if (key == "env" || key == "environment") && secretEnvName.MatchString(k) {
				if val, ok := c.(string); ok {
					s.add(val)
				}
			}
			s.addSecretEnv(c, k)
		}
	case []any:
		for _, c := range t {
			s.addSecretEnv(c, key)
		}
	}
}

// secretEnvName matches env variable names that conventionally hold secrets.
var secretEnvName = regexp.MustCompile(`(?i)KEY|SECRET|TOKEN|PASSW|CREDENTIAL|AUTH|^PREFECT_CLIENT_CUSTOM_HEADERS$`)

// minSubstringSecret is the shortest secret redacted inside longer text;
// shorter ones are redacted only where they are the whole value, so that a
// one-character secret does not mangle every string.
const minSubstringSecret = 6

// secretSet collects the secret values met while rendering a job.
type secretSet struct {
	mu     sync.Mutex
	values []string
}

func (s *secretSet) add(v string) {
	if s == nil || v == "" {
		return
	}
	s.mu.Lock()
	s.values = append(s.values, v)
	s.mu.Unlock()
}

// addFields collects the values under the dotted paths of a block document's
// secret fields ("*" matches every key or item).
func (s *secretSet) addFields(data map[string]any, paths []string) {
	if s == nil {
		return
	}
	for _, p := range paths {
		s.addPath(data, strings.Split(p, "."))
	}
}

func (s *secretSet) addPath(v any, path []string) {
	if len(path) == 0 {
		s.addLeaves(v)
		return
	}
	switch t := v.(type) {
	case map[string]any:
		if path[0] == "*" {
			for _, c := range t {
				s.addPath(c, path[1:])
			}
			return
		}
		if c, ok := t[path[0]]; ok {
			s.addPath(c, path[1:])
		}
	case []any:
		for _, c := range t {
			s.addPath(c, path[1:])
		}
	}
}

func (s *secretSet) addLeaves(v any) {
	switch t := v.(type) {
	case string:
		s.add(t)
	case map[string]any:
		for _, c := range t {
			s.addLeaves(c)
		}
	case []any:
		for _, c := range t {
			s.addLeaves(c)
		}
	case fmt.Stringer: // json.Number
		s.add(t.String())
	}
}

// redactor returns the collected secrets, longest first, so that a secret
// containing another is replaced whole.
func (s *secretSet) redactor() redactor {
	s.mu.Lock()
	values := append([]string(nil), s.values...)
	s.mu.Unlock()
	sort.Slice(values, func(i, j int) bool { return len(values[i]) > len(values[j]) })
	return redactor(values)
}

// redactor replaces secret values, longest first.
type redactor []string

// redact returns a copy of v with secrets replaced; key is v's key in its
// parent map, which decides for env entries.
func (rd redactor) redact(v any, key string) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, c := range t {
			if key == "env" && c != nil && c != "" && secretEnvName.MatchString(k) {
				out[k] = Redacted
				continue
			}
			out[k] = rd.redact(c, k)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, c := range t {
			out[i] = rd.redact(c, key)
		}
		return out
	case string:
		return rd.redactString(t)
	}
	return v
}

func (rd redactor) redactString(str string) string {
	for _, v := range rd {
		switch {
		case str == v:
			return Redacted
		case len(v) >= minSubstringSecret:
			str = strings.ReplaceAll(str, v, Redacted)
		}
	}
	return str
}
