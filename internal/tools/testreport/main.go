// Command testreport reads `go test -json` on standard input and prints a
// short report: each package's result, the environment lines the test mains
// print (which Prefect server the integration tests used), the full output of
// every failing test, and a closing "N passed, N failed, N skipped" line.
// It exits 1 when anything failed, or when a test was skipped under
// -no-skips (CI: integration tests are never skipped there).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	Elapsed    float64
	ImportPath string
}

func main() {
	noSkips := flag.Bool("no-skips", false, "treat a skipped test as a failure")
	flag.Parse()
	os.Exit(run(os.Stdin, os.Stdout, *noSkips))
}

func run(in io.Reader, out io.Writer, noSkips bool) int {
	var (
		passed, failed, skipped int
		outputs                 = map[string]*strings.Builder{} // package/test → output
		failures                []string
		skips                   []string
		envLines                = map[string]bool{}
		brokenBuild             bool
	)
	key := func(e event) string { return e.Package + "/" + e.Test }
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			fmt.Fprintln(out, string(line)) // go vet or build noise: show it
			continue
		}
		switch e.Action {
		case "build-output":
			fmt.Fprint(out, e.Output)
		case "build-fail":
			brokenBuild = true
		case "output":
			if e.Test == "" && strings.HasPrefix(e.Output, "pushpool-env:") {
				envLines[strings.TrimSpace(e.Output)] = true
			}
			b := outputs[key(e)]
			if b == nil {
				b = &strings.Builder{}
				outputs[key(e)] = b
			}
			b.WriteString(e.Output)
		case "pass", "fail", "skip":
			if e.Test == "" {
				status := map[string]string{"pass": "ok  ", "fail": "FAIL", "skip": "none"}[e.Action]
				fmt.Fprintf(out, "%s %s %.1fs\n", status, e.Package, e.Elapsed)
				if e.Action == "fail" {
					// Package-level failure (TestMain, a panic): show its output.
					if b := outputs[key(e)]; b != nil {
						fmt.Fprint(out, indent(b.String()))
					}
				}
				continue
			}
			if strings.Contains(e.Test, "/") {
				continue // subtests count through their parent
			}
			switch e.Action {
			case "pass":
				passed++
			case "fail":
				failed++
				failures = append(failures, key(e))
			case "skip":
				skipped++
				skips = append(skips, key(e))
			}
		}
	}
	envs := make([]string, 0, len(envLines))
	for l := range envLines {
		envs = append(envs, l)
	}
	sort.Strings(envs)
	for _, l := range envs {
		fmt.Fprintln(out, l)
	}
	for _, f := range failures {
		fmt.Fprintf(out, "\n=== FAIL %s\n%s", f, indent(outputs[f].String()))
		// A parent's failure is usually a subtest's: show theirs too.
		var subs []string
		for k := range outputs {
			if strings.HasPrefix(k, f+"/") {
				subs = append(subs, k)
			}
		}
		sort.Strings(subs)
		for _, k := range subs {
			fmt.Fprint(out, indent(outputs[k].String()))
		}
	}
	for _, s := range skips {
		fmt.Fprintf(out, "skipped: %s\n", s)
	}
	code := 0
	if failed > 0 || brokenBuild {
		code = 1
	}
	if noSkips && skipped > 0 {
		fmt.Fprintln(out, "FAIL: tests were skipped; in CI every integration test must run (see the skip reasons above)")
		code = 1
	}
	fmt.Fprintf(out, "\n%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	return code
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}
