package provider

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// envMap is a lookupEnv over a fixed environment.
func envMap(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// protoV6Env serves the provider with env as its whole environment, so a
// test decides which PREFECT_ variables it sees.
func protoV6Env(env map[string]string) map[string]func() (tfprotov6.ProviderServer, error) {
	return map[string]func() (tfprotov6.ProviderServer, error){
		"prefect": providerserver.NewProtocol6WithError(&PrefectProvider{version: "test", lookupEnv: envMap(env)}),
	}
}

// writeProfiles writes a profiles.toml into a new directory and returns its path.
func writeProfiles(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "profiles.toml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProvider_loadProfile(t *testing.T) {
	t.Parallel()
	file := writeProfiles(t, `
active = "local"

[profiles.local]
PREFECT_API_URL = "http://local:4200/api"

[profiles.staging]
PREFECT_API_URL = "http://staging:4200/api"
PREFECT_API_AUTH_STRING = "admin:pass"
prefect_api_key = "lower-case-key"
PREFECT_CLIENT_CUSTOM_HEADERS = { X-Team = "data" }
PREFECT_CSRF_ENABLED = true
`)
	home := filepath.Dir(file)
	tests := map[string]struct {
		profile, file string
		env           map[string]string
		wantName      string
		want          map[string]string
		wantErr       string
		wantWarning   string
	}{
		"active profile of profile_file": {file: file, wantName: "local",
			want: map[string]string{"PREFECT_API_URL": "http://local:4200/api"}},
		"named profile wins over PREFECT_PROFILE and active": {profile: "staging", file: file,
			env: map[string]string{envProfile: "local"}, wantName: "staging",
			want: map[string]string{"PREFECT_API_URL": "http://staging:4200/api", "PREFECT_API_AUTH_STRING": "admin:pass",
				"PREFECT_API_KEY": "lower-case-key", "PREFECT_CLIENT_CUSTOM_HEADERS": `{"X-Team":"data"}`,
				"PREFECT_CSRF_ENABLED": "true"}},
		"PREFECT_PROFILE wins over active": {file: file, env: map[string]string{envProfile: "staging"}, wantName: "staging"},
		"PREFECT_PROFILES_PATH":            {env: map[string]string{envProfilesPath: file}, wantName: "local"},
		"PREFECT_HOME":                     {env: map[string]string{envPrefectHome: home}, wantName: "local"},
		"profile_file wins over PREFECT_PROFILES_PATH": {file: file,
			env: map[string]string{envProfilesPath: filepath.Join(home, "missing.toml")}, wantName: "local"},
		"missing default file is no profile": {env: map[string]string{envPrefectHome: t.TempDir()}},
		"missing named file":                 {file: filepath.Join(home, "missing.toml"), wantErr: "does not exist"},
		"missing PREFECT_PROFILES_PATH file": {env: map[string]string{envProfilesPath: filepath.Join(home, "missing.toml")},
			wantErr: "(from PREFECT_PROFILES_PATH) does not exist"},
		"missing named profile": {profile: "prod", file: file,
			wantErr: `profile "prod" (from profile) is not in ` + file + `, which has the profiles "local", "staging"`},
		"missing active profile is skipped": {file: file, env: map[string]string{envProfile: "prod"},
			wantWarning: `profile "prod" (from PREFECT_PROFILE) is not in`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := loadProfile(tc.profile, tc.file, envMap(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.name != tc.wantName {
				t.Errorf("profile = %q, want %q", got.name, tc.wantName)
			}
			if !strings.Contains(got.warning, tc.wantWarning) || (tc.wantWarning == "") != (got.warning == "") {
				t.Errorf("warning = %q, want %q", got.warning, tc.wantWarning)
			}
			for k, v := range tc.want {
				if got.settings[k] != v {
					t.Errorf("%s = %q, want %q", k, got.settings[k], v)
				}
			}
		})
	}
}

// authProxy is a reverse proxy to the test server that accepts only requests
// with HTTP basic auth user:pass, as a server started with
// PREFECT_SERVER_API_AUTH_STRING does; it counts the refused ones.
func authProxy(t *testing.T, user, pass string) (apiURL string, refused *atomic.Int32) {
	t.Helper()
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	refused = new(atomic.Int32)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != want {
			refused.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"exception_message":"Unauthorized"}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s.URL + target.Path, refused
}

// TestAccProvider_profile configures the provider from Prefect profiles
// against the real server: a named profile, the active profile in
// $PREFECT_HOME, basic auth from a profile, and the precedence attribute >
// environment > profile.
func TestAccProvider_profile(t *testing.T) {
	const unreachable = "http://127.0.0.1:1/api"
	authURL, refused := authProxy(t, "admin", "s3cret")
	file := writeProfiles(t, fmt.Sprintf(`
active = "broken"

[profiles.broken]
PREFECT_API_URL = %[1]q

[profiles.server]
PREFECT_API_URL = %[2]q

[profiles.auth]
PREFECT_API_URL = %[3]q
PREFECT_API_AUTH_STRING = "admin:s3cret"
`, unreachable, srv.URL, authURL))
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "profiles.toml"), []byte(fmt.Sprintf("active = \"server\"\n[profiles.server]\nPREFECT_API_URL = %q\n", srv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	flow := func(provider string) string {
		return fmt.Sprintf(`
provider "prefect" {
%s
}
resource "prefect_flow" "f" { name = %q }
`, provider, uniqueName(t, "profile"))
	}
	steps := []struct {
		name     string
		env      map[string]string
		provider string
		wantErr  string
	}{
		{name: "named profile", provider: fmt.Sprintf("profile = \"server\"\nprofile_file = %q", file)},
		{name: "active profile in PREFECT_HOME", env: map[string]string{envPrefectHome: home}},
		{name: "basic auth from the profile", provider: fmt.Sprintf("profile = \"auth\"\nprofile_file = %q", file)},
		{name: "environment over profile", env: map[string]string{"PREFECT_API_URL": srv.URL},
			provider: fmt.Sprintf("profile_file = %q", file)},
		{name: "attribute over environment and profile", env: map[string]string{"PREFECT_API_URL": unreachable},
			provider: fmt.Sprintf("endpoint = %q\nprofile_file = %q", srv.URL, file)},
		{name: "active profile used", provider: fmt.Sprintf("profile_file = %q", file),
			wantErr: `Unable to use the Prefect API at http://127.0.0.1:1/api`},
		{name: "missing profile", provider: fmt.Sprintf("profile = \"prod\"\nprofile_file = %q", file),
			wantErr: `profile "prod" \(from profile\) is not in`},
	}
	for _, s := range steps {
		t.Run(strings.ReplaceAll(s.name, " ", "_"), func(t *testing.T) {
			step := resource.TestStep{Config: flow(s.provider)}
			if s.wantErr != "" {
				step.ExpectError = regexp.MustCompile(s.wantErr)
			}
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6Env(s.env),
				Steps:                    []resource.TestStep{step},
			})
		})
	}
	if n := refused.Load(); n != 0 {
		t.Errorf("the server behind basic auth refused %d requests; the profile's PREFECT_API_AUTH_STRING was not sent", n)
	}
}
