package template

import (
	"regexp"
	"strings"
	"sync"
)

// Kind tells what a placeholder refers to, as
// prefect.utilities.templating.determine_placeholder_type does.
type Kind int

const (
	// Standard placeholders name a job variable: {{ image }}, {{ env.FOO }}.
	Standard Kind = iota
	// BlockDocument placeholders name a block document:
	// {{ prefect.blocks.<type-slug>.<name>[.<keypath>] }}.
	BlockDocument
	// Variable placeholders name a Prefect variable: {{ prefect.variables.<name> }}.
	Variable
	// EnvVar placeholders name an environment variable of the dispatcher: {{ $NAME }}.
	EnvVar
)

// String returns the name Prefect gives the kind.
func (k Kind) String() string {
	switch k {
	case BlockDocument:
		return "block_document"
	case Variable:
		return "variable"
	case EnvVar:
		return "env_var"
	default:
		return "standard"
	}
}

const (
	blockPrefix    = "prefect.blocks."
	variablePrefix = "prefect.variables."
	envVarPrefix   = "$"
)

// pyWhitespace is Python's \s for str patterns (str.isspace), which unlike
// RE2's \s includes \v, \x1c-\x1f, NEL, NBSP and the Unicode spaces.
const pyWhitespace = `\t\n\v\f\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}`

// placeholderPattern is PLACEHOLDER_CAPTURE_REGEX, ({{\s*([\w\.\-\[\]$]+)\s*}}),
// with Python's Unicode \w (letters, numbers, underscore) and \s spelled out.
// It is compiled per use rather than kept in a package variable.
const placeholderPattern = `\{\{[` + pyWhitespace + `]*([\p{L}\p{N}_.\-\[\]$]+)[` + pyWhitespace + `]*\}\}`

// placeholder is one {{ ... }} found in a template string.
type placeholder struct {
	// FullMatch is the placeholder as written, braces and spaces included.
	FullMatch string
	// Name is the text between the braces without surrounding spaces.
	Name string
	// Kind is what the name refers to.
	Kind Kind
}

// placeholderFinder finds placeholders with the compiled pattern.
type placeholderFinder struct {
	re *regexp.Regexp
}

// placeholderRegexp is the pattern, compiled on first use and shared: a
// Regexp is immutable and safe for concurrent use, and compiling it took a
// tenth of the memory a dispatch pass allocates when every render did.
var placeholderRegexp = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(placeholderPattern) })

func newPlaceholderFinder() placeholderFinder {
	return placeholderFinder{re: placeholderRegexp()}
}

// kindOf classifies a placeholder name by its prefix.
func kindOf(name string) Kind {
	switch {
	case strings.HasPrefix(name, blockPrefix):
		return BlockDocument
	case strings.HasPrefix(name, variablePrefix):
		return Variable
	case strings.HasPrefix(name, envVarPrefix):
		return EnvVar
	default:
		return Standard
	}
}

// find returns the distinct placeholders of s in order of first appearance,
// the set find_placeholders returns for a string.
func (f placeholderFinder) find(s string) []placeholder {
	if !strings.Contains(s, "{{") {
		return nil
	}
	var out []placeholder
	seen := map[string]bool{}
	for _, m := range f.re.FindAllStringSubmatch(s, -1) {
		if seen[m[0]] {
			continue
		}
		seen[m[0]] = true
		out = append(out, placeholder{FullMatch: m[0], Name: m[1], Kind: kindOf(m[1])})
	}
	return out
}

// whole reports the placeholder that is the entire string s, if s holds
// exactly one distinct placeholder and nothing else.
func whole(s string, phs []placeholder) (placeholder, bool) {
	if len(phs) == 1 && phs[0].FullMatch == s {
		return phs[0], true
	}
	return placeholder{}, false
}

// replace substitutes every placeholder of s in a single pass, so inserted
// text is never scanned again. repl returns the replacement and true, or false
// to leave the placeholder as written.
func (f placeholderFinder) replace(s string, repl func(placeholder) (string, bool)) string {
	return f.re.ReplaceAllStringFunc(s, func(full string) string {
		m := f.re.FindStringSubmatch(full)
		out, ok := repl(placeholder{FullMatch: full, Name: m[1], Kind: kindOf(m[1])})
		if !ok {
			return full
		}
		return out
	})
}
