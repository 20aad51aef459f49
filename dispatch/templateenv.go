package dispatch

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/pushpool/pushpool/dispatch/template"
)

// EnvTemplateEnv is the environment variable the pushpool command and the
// functions read Config.TemplateEnv from: names and globs separated by
// commas or spaces ("IMAGE_TAG, TEAM_*"); set and empty means none.
const EnvTemplateEnv = "PUSHPOOL_TEMPLATE_ENV"

// DefaultTemplateEnv are the dispatcher's environment variables a pool's
// template may read with {{ $NAME }} when Config.TemplateEnv is nil: where
// the dispatcher runs (region, project, subscription, resource group) and
// the Prefect API URL every job gets anyway. Nothing in it is a secret.
var DefaultTemplateEnv = []string{
	"AWS_REGION", "AWS_DEFAULT_REGION",
	"GOOGLE_CLOUD_PROJECT", "PUSHPOOL_GCP_PROJECT",
	"AZURE_SUBSCRIPTION_ID", "PUSHPOOL_ACI_RESOURCE_GROUP", "PUSHPOOL_ACI_LOCATION",
	"PREFECT_API_URL",
}

// credentialNames are the dispatcher's credentials by exact name: its cloud
// keys and tokens, the Prefect API key, auth string and custom headers, and
// its webhook secret. A {{ $NAME }} naming one, or a name credentialParts
// marks, renders empty whatever Config.TemplateEnv says: anyone who can edit
// a pool (self-hosted Prefect has no RBAC) could copy it into a job.
var credentialNames = []string{
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
	"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
	"AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_PROFILE",
	"GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_OAUTH_ACCESS_TOKEN", "CLOUDSDK_AUTH_ACCESS_TOKEN",
	"AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PASSWORD",
	"AZURE_PASSWORD", "AZURE_USERNAME", "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT", "IDENTITY_HEADER",
	"MSI_ENDPOINT", "MSI_SECRET", "AZUREWEBJOBSSTORAGE",
	"PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "PREFECT_CLIENT_CUSTOM_HEADERS",
	"PUSHPOOL_WEBHOOK_SECRET", "PUSHPOOL_WEBHOOK_SECRET_VALUE",
}

// credentialParts mark a name as a credential wherever they appear in it
// (compared upper-case): any key, secret, token, password, credential or
// connection string of the dispatcher's environment.
var credentialParts = []string{"SECRET", "TOKEN", "PASSWORD", "PASSWD", "CREDENTIAL", "PRIVATE_KEY", "API_KEY", "ACCESS_KEY", "ACCOUNT_KEY", "CONNECTION_STRING", "AUTH_STRING"}

// ParseTemplateEnv reads a list of names and globs (path.Match syntax:
// *, ?, [...]) separated by commas or whitespace, as EnvTemplateEnv holds
// it. The error names the bad pattern.
func ParseTemplateEnv(list string) ([]string, error) {
	fields := strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	out := make([]string, 0, len(fields))
	for _, f := range fields {
		if _, err := path.Match(f, ""); err != nil {
			return nil, fmt.Errorf("%s: %q is not a name or glob such as IMAGE_TAG or TEAM_*: %w", EnvTemplateEnv, f, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// isCredential reports whether a variable name is one of the dispatcher's
// credentials, which no template may read.
func isCredential(name string) bool {
	upper := strings.ToUpper(name)
	if slices.Contains(credentialNames, upper) || strings.HasPrefix(upper, "AZUREWEBJOBSSTORAGE") {
		return true
	}
	for _, part := range credentialParts {
		if strings.Contains(upper, part) {
			return true
		}
	}
	return false
}

// templateEnv answers {{ $NAME }} placeholders from the dispatcher's
// environment, for the names the allowlist matches and that are not
// credentials.
type templateEnv struct {
	lookup func(string) (string, bool)
	allow  []string
	// secrets are values no template may read under any name: the
	// dispatcher's Prefect API key and auth string.
	secrets []string
}

// allowed returns "" when the template may read name, else why not.
func (e templateEnv) allowed(name string) string {
	if isCredential(name) {
		return "it is one of the dispatcher's credentials, which a template can never read"
	}
	for _, p := range e.allow {
		if ok, _ := path.Match(p, name); ok {
			return ""
		}
	}
	return "it is not in " + EnvTemplateEnv + " (add it there to let templates read it)"
}

// reader returns the lookup one render uses; names it refuses are noted in
// refused.
func (e templateEnv) reader(refused *envRefusals) template.LookupEnv {
	return func(name string) (string, bool) {
		if why := e.allowed(name); why != "" {
			refused.add(name, why)
			return "", false
		}
		v, ok := e.lookup(name)
		if ok && v != "" && slices.Contains(e.secrets, strings.TrimSpace(v)) {
			refused.add(name, "its value is one of the dispatcher's credentials, which a template can never read")
			return "", false
		}
		return v, ok
	}
}

// envRefusals collects the {{ $NAME }} placeholders one render refused.
type envRefusals struct {
	mu    sync.Mutex
	names map[string]string
}

func (r *envRefusals) add(name, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names == nil {
		r.names = map[string]string{}
	}
	r.names[name] = why
}

// lines returns one run-log line per refused name, sorted.
func (r *envRefusals) lines(pool string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for name, why := range r.names {
		out = append(out, fmt.Sprintf("work pool %q's job template reads {{ $%s }}, which rendered empty: %s", pool, name, why))
	}
	sort.Strings(out)
	return out
}
