// Command fnbuild builds the deployable cloud function artifacts into dist/
// and prints their sizes (make functions):
//
//   - dist/lambda-arm64.zip, dist/lambda-amd64.zip: the provided.al2023
//     bootstrap, built with -tags lambda.norpc;
//   - dist/gcp-source.zip: the Go sources of the GCP function's packages,
//     for a Cloud Run functions / Cloud Run source deployment
//     (GOOGLE_BUILDABLE=./functions/gcp);
//   - dist/azure-package.zip: host.json, the function folders and the
//     linux/amd64 custom handler binary.
//
// Each links only its own cloud's backend (functions/*/backends.go). Zips
// are written by Go, so a fresh machine needs no zip tool, and with fixed
// timestamps, so unchanged code gives byte-identical artifacts.
//
// Then it measures each function side by side with its all-in-one build
// (-tags pushpool_all, every backend) and the Terraform provider: sizes,
// the cloud SDKs linked, and init time (process start to handler ready and
// to its first Prefect API request; -runs fresh processes, median), prints
// the table and writes it to -report when given (make bench).
package main

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

func main() {
	out := flag.String("o", "dist", "output directory")
	runs := flag.Int("runs", 20, "fresh processes per function build whose init time is measured (0: sizes only)")
	reportTo := flag.String("report", "", "also write the measurement table to this file")
	flag.Parse()
	if err := run(*out, *runs, *reportTo); err != nil {
		fmt.Fprintln(os.Stderr, "fnbuild:", err)
		os.Exit(1)
	}
}

// epoch is the modification time of every zip entry.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type entry struct {
	name string
	data []byte
	mode fs.FileMode
}

func run(out string, runs int, reportTo string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	var built []string
	for _, arch := range []string{"arm64", "amd64"} {
		bin, err := goBuild("./functions/lambda", arch, "lambda.norpc")
		if err != nil {
			return err
		}
		name := filepath.Join(out, "lambda-"+arch+".zip")
		if err := writeZip(name, []entry{{"bootstrap", bin, 0o755}}); err != nil {
			return err
		}
		built = append(built, name)
	}
	if exists("functions/gcp") {
		src, err := moduleSources("./functions/gcp")
		if err != nil {
			return err
		}
		name := filepath.Join(out, "gcp-source.zip")
		if err := writeZip(name, src); err != nil {
			return err
		}
		built = append(built, name)
	}
	if exists("functions/azure/app/host.json") {
		bin, err := goBuild("./functions/azure", "amd64", "")
		if err != nil {
			return err
		}
		entries := []entry{{"handler", bin, 0o755}}
		err = filepath.WalkDir("functions/azure/app", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel("functions/azure/app", p)
			entries = append(entries, entry{filepath.ToSlash(rel), b, 0o644})
			return nil
		})
		if err != nil {
			return err
		}
		name := filepath.Join(out, "azure-package.zip")
		if err := writeZip(name, entries); err != nil {
			return err
		}
		built = append(built, name)
	}
	for _, name := range built {
		st, err := os.Stat(name)
		if err != nil {
			return err
		}
		fmt.Printf("%-28s %6.1f MiB\n", name, float64(st.Size())/(1<<20))
	}
	ms, err := measure(context.Background(), runs, filepath.Join(out, "gcp-source.zip"))
	if err != nil {
		return err
	}
	var table bytes.Buffer
	if err := report(&table, ms, runs); err != nil {
		return err
	}
	fmt.Print("\n", table.String())
	if reportTo != "" {
		return os.WriteFile(reportTo, table.Bytes(), 0o644)
	}
	return nil
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// goBuild builds a static linux binary of pkg for arch.
func goBuild(pkg, arch, tags string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "fnbuild")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "bin")
	if err := goBuildTo(context.Background(), ".", pkg, tags, bin, "GOOS=linux", "GOARCH="+arch); err != nil {
		return nil, err
	}
	return os.ReadFile(bin)
}

// moduleSources are go.mod, go.sum and the Go files (and embedded files)
// of the module's packages pkg is built from, as `go list -deps` gives
// them: nothing of the other clouds' backends goes into the source zip.
func moduleSources(pkg string) ([]entry, error) {
	var entries []entry
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		entries = append(entries, entry{f, b, 0o644})
	}
	cmd := exec.Command("go", "list", "-deps", "-f", `{{if and .Module .Module.Main}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}`, pkg)
	cmd.Env = append(os.Environ(), "GOOS=linux", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps %s: %w\n%s", pkg, err, stderr.String())
	}
	root, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		dir, err := filepath.Rel(root, fields[0])
		if err != nil {
			return nil, err
		}
		for _, f := range fields[1:] {
			p := filepath.Join(dir, f)
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			entries = append(entries, entry{filepath.ToSlash(p), b, 0o644})
		}
	}
	return entries, nil
}

func writeZip(name string, entries []entry) error {
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: epoch}
		h.SetMode(e.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		if _, err := w.Write(e.data); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if buf.Len() == 0 {
		return errors.New("empty archive " + name)
	}
	return os.WriteFile(name, buf.Bytes(), 0o644)
}
