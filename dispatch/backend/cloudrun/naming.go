package cloudrun

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/google/uuid"
	"golang.org/x/text/unicode/norm"

	"github.com/pushpool/pushpool/dispatch"
)

const (
	// maxJobAndToken is the longest a job name and its
	// start_execution_token may be together: "fewer than 63 characters",
	// so that the execution <job>-<token> is a valid name.
	maxJobAndToken = 62
	// jobSuffixLen is the length of the flow-run-derived part of a job
	// name's suffix. Prefect's worker uses 7 random hex digits; 12 digits of
	// the flow run id and the attempt key make a collision between two
	// attempts' jobs vanishingly unlikely (and a found job's labels are
	// checked anyway).
	jobSuffixLen = 12
	// maxSlug is what is left of a job name for the slug of the
	// configuration's name: the job name, its suffix
	// -<12 hex of the flow run>-<attempt key> and the token (the attempt
	// key) must fit maxJobAndToken.
	maxSlug = maxJobAndToken - dispatch.KeyLen - (1 + jobSuffixLen + 1 + dispatch.KeyLen)
	// maxLabel is GCP's limit on a label key or value; maxLabels the number
	// of labels on a resource.
	maxLabel, maxLabels = 63, 64
)

// Labels pushpool sets on the jobs it creates, besides Prefect's own.
const (
	// LabelManaged marks a job pushpool created; Sweep deletes only those.
	LabelManaged = "pushpool-io-managed"
	// LabelKeepJob marks a job whose configuration set keep_job: Stop only
	// cancels its execution and Sweep leaves it alone.
	LabelKeepJob = "pushpool-io-keep-job"
	// LabelFlowRunID is the sanitised prefect.io/flow-run-id label, which
	// Prefect's worker puts on the job and its execution template.
	LabelFlowRunID = "prefect-io-flow-run-id"
	// LabelAttempt is dispatch.LabelAttempt sanitised: the attempt's Token
	// (<flow run id>-<key>), on the job and its execution template, so the
	// execution says which attempt it belongs to.
	LabelAttempt = "pushpool-io-attempt"
)

var (
	slugUnsafe  = regexp.MustCompile(`[^a-zA-Z0-9-]+`)
	dashes      = regexp.MustCompile(`-{2,}`)
	labelUnsafe = regexp.MustCompile(`[^a-z0-9_-]`)
	leadingKey  = regexp.MustCompile(`^[^a-z]+`)
	jobNameRe   = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)
)

// translit spells the letters Unicode does not decompose as unidecode does.
var translit = strings.NewReplacer("ß", "ss", "æ", "ae", "Æ", "AE", "ø", "o", "Ø", "O", "œ", "oe", "Œ", "OE",
	"đ", "d", "Đ", "D", "ł", "l", "Ł", "L", "þ", "th", "Þ", "TH", "ð", "d", "Ð", "D")

// slugify does what prefect_gcp's slugify_name (python-slugify with the
// pattern [^a-zA-Z0-9-]+) does to a name: decode HTML entities,
// transliterate to ASCII, lower-case, drop commas between digits, turn every
// run of other characters into one hyphen, trim hyphens and cut to maxLen.
// Only Latin letters are transliterated; other scripts (which unidecode
// spells out, e.g. Chinese as pinyin) become hyphens.
func slugify(s string, maxLen int) string {
	s = translit.Replace(html.UnescapeString(s))
	var b strings.Builder
	for _, r := range norm.NFKD.String(s) {
		switch {
		case r < unicode.MaxASCII:
			b.WriteRune(r)
		case unicode.Is(unicode.Mn, r):
			// combining marks left by decomposition: é → e
		default:
			b.WriteRune(' ')
		}
	}
	in := []byte(strings.ToLower(b.String()))
	var kept []byte
	for i, c := range in {
		if c == ',' && i > 0 && i+1 < len(in) && isDigit(in[i-1]) && isDigit(in[i+1]) {
			continue
		}
		kept = append(kept, c)
	}
	out := slugUnsafe.ReplaceAllString(string(kept), "-")
	out = strings.Trim(dashes.ReplaceAllString(out, "-"), "-")
	if len(out) > maxLen {
		out = strings.Trim(out[:maxLen], "-")
	}
	return out
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// JobName is the Cloud Run job name for one attempt of a flow run: the slug
// of name (the job configuration's name, normally the flow run's name) as
// Prefect's worker makes it, cut to 32 characters, then
// -<12 hex digits of the flow run id>-<attempt key>. The same attempt
// always gets the same name, which is how a repeated Start finds its job,
// and every attempt gets its own job. The name leaves room for the
// start_execution_token (the attempt key) within Cloud Run's limit. The slug
// also loses leading digits and hyphens: Cloud Run names must begin with a
// letter (Prefect's worker does not ensure it).
func JobName(name, flowRunID, attemptKey string) string {
	slug := strings.TrimLeftFunc(slugify(name, maxSlug), func(r rune) bool { return r < 'a' || r > 'z' })
	if slug == "" {
		slug = "flow-run"
	}
	return slug + "-" + runSuffix(flowRunID) + "-" + attemptKey
}

// runSuffix is 12 lower-case hex digits from the flow run id: its first
// digits when it is a UUID (so the job name shows the id's prefix), a hash of
// it otherwise.
func runSuffix(flowRunID string) string {
	if u, err := uuid.Parse(flowRunID); err == nil {
		return hex.EncodeToString(u[:])[:jobSuffixLen]
	}
	sum := sha256.Sum256([]byte(flowRunID))
	return hex.EncodeToString(sum[:])[:jobSuffixLen]
}

// validJobName reports whether name satisfies Cloud Run's rules for a job
// name.
func validJobName(name string) bool { return jobNameRe.MatchString(name) }

// sanitizeLabel does what prefect_gcp's sanitize_labels_for_gcp does to one
// label: lower-case, characters outside [a-z0-9_-] become hyphens, keys lose
// leading non-letters, both are cut to 63 characters. ok is false when the
// key ends up empty (the label is dropped).
func sanitizeLabel(key, value string) (k, v string, ok bool) {
	k = labelUnsafe.ReplaceAllString(strings.ToLower(key), "-")
	k = truncate(leadingKey.ReplaceAllString(k, ""), maxLabel)
	v = truncate(labelUnsafe.ReplaceAllString(strings.ToLower(value), "-"), maxLabel)
	return k, v, k != ""
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// labelPriority is the order in which Prefect's worker inserts its labels;
// when a job would carry more than 64 labels, the last are dropped first.
var labelPriority = []string{
	"prefect.io/flow-run-id", "prefect.io/flow-run-name", "prefect.io/version",
	"prefect.io/work-pool-name", "prefect.io/work-pool-id", "prefect.io/worker-name",
	"prefect.io/flow-id", "prefect.io/flow-name", "prefect.io/deployment-id",
	"prefect.io/deployment-name", "prefect.io/deployment-updated",
}

// mergeLabels does what prefect_gcp's merge_labels_for_gcp does: sanitise
// the configuration's labels and merge them under the labels already in the
// job body (which win), keeping at most 64 by dropping the lowest-priority
// configuration labels. Go maps have no order, so "priority" is Prefect's
// insertion order for the prefect.io labels, then the others by name.
func mergeLabels(labels map[string]string, existing map[string]string) map[string]string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		ia, ib := slices.Index(labelPriority, a), slices.Index(labelPriority, b)
		switch {
		case ia >= 0 && ib >= 0:
			return ia - ib
		case ia >= 0:
			return -1
		case ib >= 0:
			return 1
		}
		return strings.Compare(a, b)
	})
	merged := map[string]string{}
	var order []string
	for _, k := range keys {
		sk, sv, ok := sanitizeLabel(k, labels[k])
		if !ok {
			continue
		}
		if _, dup := merged[sk]; !dup {
			order = append(order, sk)
		}
		merged[sk] = sv
	}
	for k, v := range existing {
		merged[k] = v
	}
	if excess := len(merged) - maxLabels; excess > 0 {
		var prefectOnly []string
		for _, k := range order {
			if _, ok := existing[k]; !ok {
				prefectOnly = append(prefectOnly, k)
			}
		}
		for _, k := range prefectOnly[max(0, len(prefectOnly)-excess):] {
			delete(merged, k)
		}
	}
	return merged
}

// ExecutionID is a parsed infrastructure id: the full resource name of a
// Cloud Run execution.
type ExecutionID struct {
	Project, Region, Job, Execution string
}

var executionRe = regexp.MustCompile(`^projects/([^/]+)/locations/([^/]+)/jobs/([^/]+)/executions/([^/]+)$`)

// String returns the resource name projects/P/locations/R/jobs/J/executions/E.
func (e ExecutionID) String() string {
	return fmt.Sprintf("projects/%s/locations/%s/jobs/%s/executions/%s", e.Project, e.Region, e.Job, e.Execution)
}

// JobResource returns the job's resource name projects/P/locations/R/jobs/J.
func (e ExecutionID) JobResource() string {
	return fmt.Sprintf("projects/%s/locations/%s/jobs/%s", e.Project, e.Region, e.Job)
}

// ParseExecutionID parses an infrastructure id. A bare job name, which is
// what Prefect's own Cloud Run worker records as infrastructure_pid, is
// refused with an error that says so: without the project and region of the
// job configuration it names nothing that can be found.
func ParseExecutionID(id string) (ExecutionID, error) {
	if m := executionRe.FindStringSubmatch(id); m != nil {
		return ExecutionID{Project: m[1], Region: m[2], Job: m[3], Execution: m[4]}, nil
	}
	if validJobName(id) {
		return ExecutionID{}, fmt.Errorf("infrastructure id %q is a bare Cloud Run job name, as Prefect's cloud-run-v2 worker records it; pushpool records the execution's full resource name projects/PROJECT/locations/REGION/jobs/JOB/executions/EXECUTION and cannot locate a bare job name without its project and region: look the job up in the Cloud Run console, or let pushpool resubmit the run", id)
	}
	return ExecutionID{}, fmt.Errorf("infrastructure id %q is not a Cloud Run execution name (want projects/PROJECT/locations/REGION/jobs/JOB/executions/EXECUTION)", id)
}
