package provider

// Prefect profiles: the provider's profile and profile_file read
// profiles.toml the way the Prefect CLI (prefect/settings/sources.py of
// Prefect 3.9) finds and reads it, and take from the chosen profile only the
// client settings the provider has attributes for.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// Environment variables that choose the profile, as the Prefect CLI reads them.
const (
	envProfile      = "PREFECT_PROFILE"
	envProfilesPath = "PREFECT_PROFILES_PATH"
	envPrefectHome  = "PREFECT_HOME"
)

// profileSource says where a profiles file came from, for messages.
type profileSource struct {
	path string
	// explicit is true when the user named the file (profile_file or
	// PREFECT_PROFILES_PATH): a missing file is then an error, as a
	// profiles file that is not there is only the CLI's default case.
	explicit bool
	// why names the setting the path came from.
	why string
}

// profilesPath finds profiles.toml as the Prefect CLI does, with
// profile_file first: PREFECT_PROFILES_PATH, then the profiles_path of
// ./prefect.toml or [tool.prefect] of ./pyproject.toml, then
// $PREFECT_HOME/profiles.toml, then ~/.prefect/profiles.toml. Like the CLI,
// it does not expand ~ in paths read from settings.
func profilesPath(attr string, lookupEnv func(string) (string, bool)) (profileSource, error) {
	if attr != "" {
		return profileSource{path: attr, explicit: true, why: "profile_file"}, nil
	}
	if v, ok := lookupEnv(envProfilesPath); ok && v != "" {
		return profileSource{path: v, explicit: true, why: envProfilesPath}, nil
	}
	for _, f := range []struct {
		file string
		keys []string
	}{
		{"prefect.toml", []string{"profiles_path"}},
		{"pyproject.toml", []string{"tool", "prefect", "profiles_path"}},
	} {
		v, err := tomlString(f.file, f.keys)
		if err != nil {
			return profileSource{}, err
		}
		if v != "" {
			return profileSource{path: v, explicit: true, why: f.file + " " + strings.Join(f.keys, ".")}, nil
		}
	}
	if v, ok := lookupEnv(envPrefectHome); ok && v != "" {
		return profileSource{path: filepath.Join(v, "profiles.toml"), why: envPrefectHome}, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return profileSource{}, fmt.Errorf("find the home directory for ~/.prefect/profiles.toml: %w", err)
	}
	return profileSource{path: filepath.Join(home, ".prefect", "profiles.toml"), why: "the default"}, nil
}

// tomlString reads the string at keys of a TOML file in the working
// directory; "" when the file or the key is missing.
func tomlString(file string, keys []string) (string, error) {
	var doc map[string]any
	if _, err := toml.DecodeFile(file, &doc); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		return "", fmt.Errorf("read %s in the working directory: %w", file, err)
	}
	var cur any = doc
	for _, k := range keys {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", nil
		}
		cur = m[k]
	}
	s, _ := cur.(string)
	return s, nil
}

// prefectProfile is the chosen profile's settings.
type prefectProfile struct {
	// name and path say which profile of which file, for messages; name is
	// "" when no profile applies.
	name, path string
	settings   map[string]string
	// warning, when not "", explains why no profile applies although a
	// profile was asked for by PREFECT_PROFILE or the file's active key.
	warning string
}

// get returns a setting of the profile, trimmed; "" when unset.
func (p prefectProfile) get(names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(p.settings[n]); v != "" {
			return v
		}
	}
	return ""
}

// loadProfile reads the profile the provider uses: the one named by the
// profile attribute, else PREFECT_PROFILE, else the file's active key. A
// missing default profiles file, or a file without an active profile, means
// no profile. A profile named by the attribute must exist; one named by
// PREFECT_PROFILE or active that does not exist is skipped with a warning,
// as the Prefect CLI falls back to its defaults then.
func loadProfile(attrProfile, attrFile string, lookupEnv func(string) (string, bool)) (prefectProfile, error) {
	src, err := profilesPath(attrFile, lookupEnv)
	if err != nil {
		return prefectProfile{}, err
	}
	var doc struct {
		Active   string                    `toml:"active"`
		Profiles map[string]map[string]any `toml:"profiles"`
	}
	if _, err := toml.DecodeFile(src.path, &doc); err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist) && !src.explicit && attrProfile == "":
			return prefectProfile{}, nil
		case errors.Is(err, fs.ErrNotExist):
			return prefectProfile{}, fmt.Errorf("the profiles file %s (from %s) does not exist", src.path, src.why)
		}
		return prefectProfile{}, fmt.Errorf("read the profiles file %s (from %s): %w", src.path, src.why, err)
	}
	name, why := attrProfile, "profile"
	if name == "" {
		if v, ok := lookupEnv(envProfile); ok && v != "" {
			name, why = v, envProfile
		} else {
			name, why = doc.Active, "its active key"
		}
	}
	if name == "" {
		return prefectProfile{}, nil
	}
	raw, ok := doc.Profiles[name]
	if !ok {
		names := make([]string, 0, len(doc.Profiles))
		for n := range doc.Profiles {
			names = append(names, n)
		}
		sort.Strings(names)
		msg := fmt.Sprintf("profile %q (from %s) is not in %s, which has %s", name, why, src.path, quotedList(names))
		if attrProfile != "" {
			return prefectProfile{}, errors.New(msg)
		}
		return prefectProfile{warning: msg + "; no profile settings are used, as with the Prefect CLI"}, nil
	}
	out := prefectProfile{name: name, path: src.path, settings: make(map[string]string, len(raw))}
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			out.settings[strings.ToUpper(k)] = v
		case map[string]any, []any:
			// A table, such as PREFECT_CLIENT_CUSTOM_HEADERS written in TOML
			// rather than as a JSON string: the setting's JSON.
			b, err := json.Marshal(v)
			if err != nil {
				return prefectProfile{}, fmt.Errorf("read %s of profile %q in %s: %w", k, name, src.path, err)
			}
			out.settings[strings.ToUpper(k)] = string(b)
		default:
			out.settings[strings.ToUpper(k)] = fmt.Sprint(v)
		}
	}
	return out, nil
}

// quotedList formats names for a message; "no profiles" when empty.
func quotedList(names []string) string {
	if len(names) == 0 {
		return "no profiles"
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return "the profiles " + strings.Join(q, ", ")
}
