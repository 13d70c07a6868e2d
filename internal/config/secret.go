package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// MaxSecretBytes bounds the content of a file:/path secret reference.
const MaxSecretBytes = 64 * KiB

const redacted = "[redacted]"

// Secret is a configuration value that may be sensitive. As written in the
// file it is either a literal or a reference resolved when the configuration
// is loaded:
//
//	env:NAME     the value of environment variable NAME
//	file:/path   the content of the file at the absolute path /path, with
//	             trailing line breaks removed (at most MaxSecretBytes)
//
// Any value starting with "env:" or "file:" is a reference; there is no
// escape. A resolved reference must not be empty.
//
// A Secret never prints its value: String, every fmt verb (including %#v)
// and slog all show "[redacted]". Code that needs the value calls Reveal,
// which is easy to find in review.
type Secret struct {
	text  string // as written: a literal, "env:NAME" or "file:/path"
	value string // a reference's resolved value; never empty once resolved
}

// NewSecret returns the Secret written as text in a configuration. A
// literal is usable at once; a reference must be resolved with
// [Secret.Resolve] first.
func NewSecret(text string) Secret { return Secret{text: text} }

// IsZero reports whether the secret is unset (written as "" or absent).
func (s Secret) IsZero() bool { return s.text == "" }

// IsReference reports whether the secret was written as an env: or file:
// reference rather than a literal.
func (s Secret) IsReference() bool {
	return strings.HasPrefix(s.text, "env:") || strings.HasPrefix(s.text, "file:")
}

// Reference returns the reference as written ("env:NAME", "file:/path"),
// which is not itself secret, or "" for a literal.
func (s Secret) Reference() string {
	if s.IsReference() {
		return s.text
	}
	return ""
}

// Resolved reports whether Reveal returns the secret's value: always for a
// literal, after a successful Resolve for a reference.
func (s Secret) Resolved() bool { return !s.IsReference() || s.value != "" }

// Reveal returns the secret's value, or "" for a reference not yet
// resolved. Send it where it belongs; never log it.
func (s Secret) Reveal() string {
	if s.IsReference() {
		return s.value
	}
	return s.text
}

// Resolve looks up a reference with lookupEnv (for env:) or readFile (for
// file:), normally os.LookupEnv and a bounded file read. A literal needs no
// resolution. Errors name the reference, never the value.
func (s *Secret) Resolve(lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) error {
	if !s.IsReference() {
		return nil
	}
	if err := checkReference(s.text); err != nil {
		return err
	}
	var v string
	if name, ok := strings.CutPrefix(s.text, "env:"); ok {
		val, set := lookupEnv(name)
		if !set {
			return fmt.Errorf("environment variable %s is not set", name)
		}
		if val == "" {
			return fmt.Errorf("environment variable %s is empty", name)
		}
		v = val
	} else {
		path := strings.TrimPrefix(s.text, "file:")
		data, err := readFile(path)
		if err != nil {
			return fmt.Errorf("read secret file: %w", err)
		}
		if len(data) > int(MaxSecretBytes) {
			return fmt.Errorf("secret file %s is larger than %v", path, MaxSecretBytes)
		}
		v = strings.TrimRight(string(data), "\r\n")
		if v == "" {
			return fmt.Errorf("secret file %s is empty", path)
		}
	}
	s.value = v
	return nil
}

// checkReference reports a malformed env: or file: reference.
func checkReference(text string) error {
	if name, ok := strings.CutPrefix(text, "env:"); ok {
		if !isEnvName(name) {
			return fmt.Errorf("%q is not a valid reference: want env:NAME with NAME matching [A-Za-z_][A-Za-z0-9_]*", text)
		}
		return nil
	}
	if path, ok := strings.CutPrefix(text, "file:"); ok {
		if strings.ContainsRune(path, 0) || !filepath.IsAbs(path) {
			return fmt.Errorf("%q is not a valid reference: want file:/absolute/path", text)
		}
	}
	return nil
}

// isEnvName reports whether name is a portable environment variable name.
func isEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range []byte(name) {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// String returns "[redacted]".
func (s Secret) String() string { return redacted }

// Format prints "[redacted]" for every verb, so that no fmt call can reveal
// the value.
func (s Secret) Format(f fmt.State, verb rune) { io.WriteString(f, redacted) }

// LogValue returns "[redacted]", so that slog never reveals the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns the reference as written, which is not secret,
// "[redacted]" for a literal, or "" when unset. It lets a configuration be
// shown (for example by an admin API) without revealing secrets.
func (s Secret) MarshalText() ([]byte, error) {
	switch {
	case s.IsZero():
		return []byte{}, nil
	case s.IsReference():
		return []byte(s.text), nil
	}
	return []byte(redacted), nil
}

// Equal reports whether s and t were written the same way and resolved to
// the same value. go-cmp uses it to compare configurations.
func (s Secret) Equal(t Secret) bool { return s == t }

// readSecretFile reads a file:/path reference: a regular file (so that a
// FIFO or a device such as /dev/stdin can neither block the load nor feed
// it endless data) of at most MaxSecretBytes; Resolve reports anything
// longer.
func readSecretFile(path string) ([]byte, error) {
	return readBounded(path, int64(MaxSecretBytes), true)
}

// errTooLarge is returned by readBounded for a file over its limit.
var errTooLarge = errors.New("file too large")

// readBounded reads at most limit bytes of path, failing with errTooLarge
// wrapped when there are more. With regularOnly it refuses anything but a
// regular file.
func readBounded(path string, limit int64, regularOnly bool) ([]byte, error) {
	if regularOnly {
		// Check before opening: opening a FIFO blocks until a writer appears.
		fi, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s is not a regular file", path)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w (more than %v)", path, errTooLarge, ByteSize(limit))
	}
	return data, nil
}
