package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSecretNeverPrints(t *testing.T) {
	const value = "t0ken-s3cret"
	ref := NewSecret("env:TOKEN")
	if err := ref.Resolve(lookupFakeEnv, readFakeFile); err != nil {
		t.Fatal(err)
	}
	literal := NewSecret(value)
	h := &HTTP{URL: "https://x.example.com", BearerToken: ref, Headers: map[string]Secret{"X-Key": literal}}

	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
		out = append(out, fmt.Sprintf(verb, ref), fmt.Sprintf(verb, literal), fmt.Sprintf(verb, h), fmt.Sprintf(verb, *h))
	}
	out = append(out, ref.String(), fmt.Sprint(ref), fmt.Sprintln(literal))

	var logs bytes.Buffer
	for _, handler := range []slog.Handler{slog.NewTextHandler(&logs, nil), slog.NewJSONHandler(&logs, nil)} {
		l := slog.New(handler)
		l.Info("x", "token", ref, "literal", literal, "upstream", h, slog.Any("headers", h.Headers))
	}
	out = append(out, logs.String())

	js, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(js))

	for _, s := range out {
		if strings.Contains(s, value) || strings.Contains(s, fmt.Sprintf("%x", value)) {
			t.Errorf("secret value printed: %s", s)
		}
	}
	if ref.Reveal() != value || literal.Reveal() != value {
		t.Errorf("Reveal = %q, %q; want the value", ref.Reveal(), literal.Reveal())
	}
	if !strings.Contains(string(js), `"BearerToken":"env:TOKEN"`) || !strings.Contains(string(js), `"X-Key":"[redacted]"`) {
		t.Errorf("JSON = %s, want references shown and literals redacted", js)
	}
}

func TestSecretResolve(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("x"), int(MaxSecretBytes)+1), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		text     string
		readFile func(string) ([]byte, error)
		want     string
		wantErr  string
	}{
		{name: "literal needs no lookup", text: "plain", want: "plain"},
		{name: "env", text: "env:TOKEN", want: "t0ken-s3cret"},
		{name: "env not set", text: "env:NOT_SET", wantErr: "environment variable NOT_SET is not set"},
		{name: "env empty", text: "env:EMPTY", wantErr: "environment variable EMPTY is empty"},
		{name: "env bad name", text: "env:A-B", wantErr: `"env:A-B" is not a valid reference`},
		{name: "file trims trailing line breaks", text: "file:/run/secrets/token", want: "f1le-s3cret"},
		{name: "file only line breaks", text: "file:/run/secrets/blank", wantErr: "secret file /run/secrets/blank is empty"},
		{name: "file missing", text: "file:/nope", wantErr: "read secret file: open /nope: file does not exist"},
		{name: "file relative", text: "file:token", wantErr: `"file:token" is not a valid reference: want file:/absolute/path`},
		{name: "injected reader returning too much", text: "file:/x",
			readFile: func(string) ([]byte, error) { return make([]byte, MaxSecretBytes+1), nil },
			wantErr:  "secret file /x is larger than 64KiB"},
		{name: "real file too large", text: "file:" + big, readFile: readSecretFile, wantErr: "file too large"},
		{name: "real device is refused", text: "file:/dev/zero", readFile: readSecretFile, wantErr: "is not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			read := tt.readFile
			if read == nil {
				read = readFakeFile
			}
			s := NewSecret(tt.text)
			done := make(chan error, 1)
			go func() { done <- s.Resolve(lookupFakeEnv, read) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Resolve blocked")
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve() error = %v, want it to contain %q", err, tt.wantErr)
				}
				if s.Resolved() || s.Reveal() != "" {
					t.Errorf("after a failed Resolve, Resolved, Reveal = %v, %q; want false, empty", s.Resolved(), s.Reveal())
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve() = %v", err)
			}
			if got := s.Reveal(); got != tt.want {
				t.Errorf("Reveal() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSecretAccessors(t *testing.T) {
	tests := []struct {
		text                  string
		zero, isRef, resolved bool
		ref, marshal          string
	}{
		{text: "", zero: true, resolved: true, marshal: ""},
		{text: "literal", resolved: true, marshal: "[redacted]"},
		{text: "env:X", isRef: true, ref: "env:X", marshal: "env:X"},
		{text: "file:/a", isRef: true, ref: "file:/a", marshal: "file:/a"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			s := NewSecret(tt.text)
			m, err := s.MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			got := []any{s.IsZero(), s.IsReference(), s.Resolved(), s.Reference(), string(m)}
			want := []any{tt.zero, tt.isRef, tt.resolved, tt.ref, tt.marshal}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("IsZero, IsReference, Resolved, Reference, MarshalText = %v, want %v", got, want)
			}
		})
	}
}

func TestSecretEqual(t *testing.T) {
	a, b := NewSecret("env:TOKEN"), NewSecret("env:TOKEN")
	if !a.Equal(b) {
		t.Error("two unresolved copies of a reference differ")
	}
	if err := a.Resolve(lookupFakeEnv, readFakeFile); err != nil {
		t.Fatal(err)
	}
	if a.Equal(b) {
		t.Error("a resolved secret equals an unresolved one")
	}
	if !(Secret{}).Equal(NewSecret("")) {
		t.Error("the zero Secret differs from one written as \"\"")
	}
	if NewSecret("x").Equal(NewSecret("y")) {
		t.Error("different literals are equal")
	}
}

func TestReadBoundedErrors(t *testing.T) {
	_, err := readBounded(filepath.Join(t.TempDir(), "absent"), 10, true)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want not-exist", err)
	}
}
