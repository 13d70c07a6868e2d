package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// CheckFiles checks the files and directories a loaded configuration (from source) names, as serve will use
// them: files it reads exist, are regular and readable; private keys are not readable by
// others; databases, the checkpoint directory and export files can be created or written;
// stdio commands can be run. Parse checks only what the text says; this is what `mcpguard
// config check` adds, so that a file that is missing or has the wrong mode is reported before
// the gateway is started. The error is a *Problems listing every problem; nothing is created or
// changed.
func CheckFiles(c *Config, source string) error {
	var list []Problem
	add := func(path, format string, args ...any) {
		list = append(list, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	readable := func(path, file string, private fs.FileMode) {
		if file == "" {
			return
		}
		fi, err := os.Stat(file)
		if err != nil {
			hint := ""
			if strings.HasPrefix(file, "file:") || strings.Contains(file, "/file:") {
				hint = ` (this setting is a path, not a secret reference: leave out "file:")`
			}
			add(path, "%s: %s%s", file, statProblem(err), hint)
			return
		}
		if !fi.Mode().IsRegular() {
			add(path, "%s is not a regular file", file)
			return
		}
		if err := unix.Access(file, unix.R_OK); err != nil {
			add(path, "%s cannot be read by this user (mode %v): %v", file, fi.Mode().Perm(), err)
			return
		}
		if perm := fi.Mode().Perm(); perm&private != 0 {
			add(path, "%s is a private key with mode %v, which lets others read it: chmod %o %s", file, perm, perm&^private, file)
		}
	}
	// writable: a file the gateway writes or creates (a SQLite database, an export file).
	writable := func(path, file string) {
		if file == "" {
			return
		}
		fi, err := os.Stat(file)
		switch {
		case err == nil && !fi.Mode().IsRegular():
			add(path, "%s is not a regular file", file)
		case err == nil:
			if err := unix.Access(file, unix.R_OK|unix.W_OK); err != nil {
				add(path, "%s cannot be written by this user (mode %v): %v", file, fi.Mode().Perm(), err)
			}
		case errors.Is(err, fs.ErrNotExist):
			dir := filepath.Dir(file)
			if dfi, derr := os.Stat(dir); derr != nil || !dfi.IsDir() {
				add(path, "%s does not exist and neither does its directory %s: create the directory", file, dir)
			} else if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
				add(path, "%s does not exist and cannot be created: the directory %s is not writable by this user", file, dir)
			}
		default:
			add(path, "%s: %s", file, statProblem(err))
		}
	}
	// directory: a directory the gateway writes into, created (with its parents) when missing.
	directory := func(path, dir string) {
		if dir == "" {
			return
		}
		d := dir
		for {
			fi, err := os.Stat(d)
			if err == nil {
				switch {
				case !fi.IsDir():
					add(path, "%s is not a directory", d)
				case unix.Access(d, unix.W_OK|unix.X_OK) != nil:
					if d == dir {
						add(path, "%s is not writable by this user", dir)
					} else {
						add(path, "%s does not exist and cannot be created: %s is not writable by this user", dir, d)
					}
				}
				return
			}
			if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTDIR) {
				add(path, "%s: %s", d, statProblem(err))
				return
			}
			parent := filepath.Dir(d)
			if parent == d {
				return
			}
			d = parent
		}
	}
	sqliteFile := func(path, db string) {
		if db != "" && !strings.Contains(db, "://") {
			writable(path, db)
		}
	}

	readable("policy_file", c.PolicyFile, 0)
	sqliteFile("api_keys_database", c.APIKeysDatabase)
	if t := c.TLS; t != nil {
		readable("tls.cert_file", t.CertFile, 0)
		readable("tls.key_file", t.KeyFile, 0o007)
		readable("tls.client_ca_file", t.ClientCAFile, 0)
	}
	if t := c.Tracing; t != nil {
		readable("tracing.ca_file", t.CAFile, 0)
	}
	if t := c.ToolPinning; t != nil {
		sqliteFile("tool_pinning.database", t.Database)
	}
	if a := c.Audit; a != nil {
		if !a.Database.IsReference() {
			sqliteFile("audit.database", a.Database.Reveal())
		}
		readable("audit.signing_key_file", a.SigningKeyFile, 0o077) // as strict as serve is
		directory("audit.checkpoint_dir", a.CheckpointDir)
		for i, s := range a.Sinks {
			p := pathIndex("audit.sinks", i)
			if s.JSONL != nil {
				writable(p+".jsonl.path", s.JSONL.Path)
			}
			if s.Syslog != nil {
				readable(p+".syslog.ca_file", s.Syslog.CAFile, 0)
			}
		}
	}
	for i, u := range c.Upstreams {
		s := u.Stdio
		if s == nil {
			continue
		}
		p := pathIndex("upstreams", i) + ".stdio"
		if s.Command != SelfCommand && s.Command != "" {
			if _, err := exec.LookPath(s.Command); err != nil {
				add(p+".command", "%s cannot be run: %v", quote(s.Command), err)
			}
		}
		if s.Dir != "" {
			if fi, err := os.Stat(s.Dir); err != nil || !fi.IsDir() {
				add(p+".dir", "%s is not a directory", s.Dir)
			}
		}
	}
	if len(list) == 0 {
		return nil
	}
	return &Problems{Source: source, Kind: "configuration", List: list}
}

// statProblem says why a file could not be examined, in words that say what to fix.
func statProblem(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such file"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied on a directory above it"
	}
	return err.Error()
}
