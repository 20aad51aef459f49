// Package prefectenv gives a job the Prefect settings of the dispatcher the
// way Prefect's worker gives them: every setting the dispatcher was given
// in its environment, under the setting's own variable name (an alias such
// as PREFECT_RUNNER_HEARTBEAT_FREQUENCY becomes
// PREFECT_FLOWS_HEARTBEAT_FREQUENCY), with the value written back as Prefect
// writes it (booleans True/False, numbers as Python prints them); variables
// named PREFECT_* that are no Prefect setting are not passed. This is
// get_current_settings().to_environment_variables(exclude_unset=True) of the
// pinned Prefect, which BaseJobConfiguration puts first in every job's env,
// under the job template's own env.
//
// The table of settings (settings.json) is generated from the pinned
// Prefect by testdata/settings_table.py; a test compares the two and the
// jobs' settings with what Prefect's worker code gives. Settings from
// Prefect profiles (profiles.toml) are not read: the dispatcher is
// configured by its environment.
package prefectenv

import (
	_ "embed"
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

//go:embed settings.json
var table []byte

// Setting is one Prefect setting.
type Setting struct {
	// Name is the variable a worker passes the setting to its jobs as.
	Name string `json:"name"`
	// Reads are the variables Prefect reads the setting from, first wins.
	Reads []string `json:"reads"`
	// Kind is bool, int, float, str or other: how the value is written.
	Kind string `json:"kind"`
}

// Settings returns the table of Prefect's settings, sorted by Name.
func Settings() []Setting {
	var s []Setting
	if err := json.Unmarshal(table, &s); err != nil {
		panic("prefectenv: the embedded settings.json is not JSON: " + err.Error())
	}
	return s
}

// ForJobs returns the Prefect settings a worker with the environment lookup
// reads would pass its jobs, as environment variables.
func ForJobs(lookup func(string) (string, bool)) map[string]string {
	env := map[string]string{}
	for _, s := range Settings() {
		for _, name := range s.Reads {
			if v, ok := lookup(name); ok {
				env[s.Name] = value(s.Kind, v)
				break
			}
		}
	}
	return env
}

// value writes v back as Prefect writes a setting of the kind; a value
// Prefect would refuse is passed as given, for the job to refuse alike.
func value(kind, v string) string {
	t := strings.TrimSpace(v)
	switch kind {
	case "bool":
		if b, ok := ParseBool(t); ok && b {
			return "True"
		} else if ok {
			return "False"
		}
	case "int":
		if n, err := strconv.ParseInt(t, 10, 64); err == nil {
			return strconv.FormatInt(n, 10)
		}
		if f, err := strconv.ParseFloat(t, 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return strconv.FormatInt(int64(f), 10)
		}
	case "float":
		if f, err := strconv.ParseFloat(t, 64); err == nil {
			return pyFloat(f)
		}
	}
	return v
}

// ParseBool reads a boolean setting as Prefect (pydantic) does: 1, on, t,
// true, y, yes and 0, off, f, false, n, no, in any case; ok is false for
// anything else.
func ParseBool(v string) (b, ok bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "on", "t", "true", "y", "yes":
		return true, true
	case "0", "off", "f", "false", "n", "no":
		return false, true
	}
	return false, false
}

// pyFloat prints f as Python's str(float) does: the shortest digits that
// read back as f, with ".0" on whole numbers and an exponent from 1e16 up
// and below 1e-4.
func pyFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	if a := math.Abs(f); a != 0 && (a >= 1e16 || a < 1e-4) {
		s := strconv.FormatFloat(f, 'e', -1, 64) // 1e+16, 1.5e-05
		mant, exp, _ := strings.Cut(s, "e")
		sign := exp[0]
		digits := strings.TrimLeft(exp[1:], "0")
		if len(digits) < 2 {
			digits = strings.Repeat("0", 2-len(digits)) + digits
		}
		return mant + "e" + string(sign) + digits
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}
