package stdio

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Command describes the server process of a stdio upstream.
//
// A Command comes from the operator's configuration and nowhere else: the gateway never builds
// any part of it (path, arguments, environment, directory) from what a caller sends, so a caller
// can neither choose what runs nor inject arguments or variables into it.
type Command struct {
	// Path is an absolute path, or a bare name (no slash) looked up in the PATH entry of Env,
	// never in the gateway's own PATH. Relative paths with a slash are rejected because they
	// would depend on the gateway's working directory.
	Path string
	// Args are the arguments after the program name; argv[0] is Path as written.
	Args []string
	// Env is the complete environment of the process, as "KEY=value" entries. Nothing from the
	// gateway's own environment is added: an empty Env starts the process with no variables at
	// all. Every entry must have a non-empty key, and a key may appear only once.
	Env []string
	// Dir is the working directory of the process; empty means the gateway's.
	Dir string
}

// resolve returns the absolute path of the program to run.
func (c Command) resolve() (string, error) {
	switch {
	case c.Path == "":
		return "", errors.New("command path is empty")
	case strings.IndexByte(c.Path, 0) >= 0:
		return "", errors.New("command path contains a NUL byte")
	case filepath.IsAbs(c.Path):
		if err := checkExecutable(c.Path); err != nil {
			return "", fmt.Errorf("command %q: %w", c.Path, err)
		}
		return c.Path, nil
	case strings.ContainsRune(c.Path, '/') || strings.ContainsRune(c.Path, filepath.Separator):
		return "", fmt.Errorf("command %q is a relative path; use an absolute path or a bare name looked up on PATH", c.Path)
	}
	pathList, ok := lookupEnv(c.Env, "PATH")
	if !ok {
		return "", fmt.Errorf("command %q is not an absolute path and Env has no PATH to look it up in", c.Path)
	}
	for _, dir := range filepath.SplitList(pathList) {
		// An empty or relative PATH entry would resolve against the gateway's working
		// directory, which the operator did not name: skip it, as os/exec refuses "." entries.
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, c.Path)
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %q not found in the PATH of Env (%q)", c.Path, pathList)
}

// checkExecutable reports whether path names a regular file with an execute bit set.
func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fs.ErrPermission
	}
	return nil
}

// checkEnv rejects entries that the process would read ambiguously or that exec would drop
// silently. Errors name the entry's index and key, never its value, which may be a secret.
func checkEnv(env []string) error {
	seen := make(map[string]int, len(env))
	for i, kv := range env {
		key, _, ok := strings.Cut(kv, "=")
		switch {
		case !ok || key == "":
			return fmt.Errorf("command Env[%d] is not a KEY=value entry", i)
		case strings.IndexByte(kv, 0) >= 0:
			return fmt.Errorf("command Env[%d] (%s) contains a NUL byte", i, key)
		}
		if j, dup := seen[key]; dup {
			return fmt.Errorf("command Env[%d] sets %s again (first set by Env[%d])", i, key, j)
		}
		seen[key] = i
	}
	return nil
}

// checkArgs rejects arguments that cannot be passed to a process.
func checkArgs(args []string) error {
	for i, a := range args {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("command Args[%d] contains a NUL byte", i)
		}
	}
	return nil
}

// lookupEnv returns the value of key in env.
func lookupEnv(env []string, key string) (string, bool) {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}
