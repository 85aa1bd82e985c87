package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedFileIsCurrent fails when a kind was added, removed or
// reordered without `go generate ./internal/rules`.
func TestGeneratedFileIsCurrent(t *testing.T) {
	want, err := Generate("../../rules")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("../../rules", Output))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("internal/rules/%s is stale: run go generate ./internal/rules\nwant:\n%s", Output, want)
	}
}

// TestNewKindIsOneFile: a package with the registered kinds plus one new
// file holding a kind and its line gets that kind in Kinds (at its
// order), Rules and Facts, with nothing else edited.
func TestNewKindIsOneFile(t *testing.T) {
	dir := t.TempDir()
	srcs, _ := filepath.Glob("../../rules/*.go")
	for _, s := range srcs {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(s)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kernel := "package rules\n\n// KernelRule: kernel = [ \"6.1\" ].\ntype KernelRule struct{}\n\n// KernelFacts are the kernel's release.\ntype KernelFacts struct{}\n\n" +
		"//sysextd:rulekind 6 KernelRule KernelFacts\nvar kernelKind = Kind{Key: \"kernel\"}\n"
	if err := os.WriteFile(filepath.Join(dir, "kernel.go"), []byte(kernel), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := Generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{"&fileKind,       // file.go\n\t&kernelKind,", "\tFileRule\n\tKernelRule\n}", "\tFileFacts\n\tKernelFacts\n}"} {
		if !strings.Contains(s, want) {
			t.Errorf("generated file lacks %q:\n%s", want, s)
		}
	}
}

// TestBadLinesAreRefused: every malformed registration line is an error
// naming its file and line.
func TestBadLinesAreRefused(t *testing.T) {
	for _, tt := range []struct{ name, src, want string }{
		{"fields", "//sysextd:rulekind 1 ARule\nvar aKind = Kind{}\n", "a.go:3: want"},
		{"order", "//sysextd:rulekind x ARule AFacts\nvar aKind = Kind{}\n", `a.go:3: order "x"`},
		{"zero", "//sysextd:rulekind 0 ARule AFacts\nvar aKind = Kind{}\n", `a.go:3: order "0"`},
		{"unexported", "//sysextd:rulekind 1 aRule AFacts\nvar aKind = Kind{}\n", `a.go:3: "aRule" is not an exported type name`},
		{"two vars", "//sysextd:rulekind 1 ARule AFacts\nvar aKind, bKind = Kind{}, Kind{}\n", "a.go:3: the line must stand above one variable"},
		{"duplicate", "//sysextd:rulekind 1 ARule AFacts\nvar aKind = Kind{}\n\n//sysextd:rulekind 1 BRule BFacts\nvar bKind = Kind{}\n", "a.go:6: order 1 is aKind's already"},
		{"none", "var aKind = Kind{}\n", "no \"//sysextd:rulekind\" line"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "a.go"), []byte("package rules\n\n"+tt.src), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Generate(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
