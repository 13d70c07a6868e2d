//go:build tools

// Package tools pins modules that tests and fixtures use but no production package imports yet.
package tools

import (
	_ "cel.dev/cel-go/cel"
	_ "github.com/MicahParks/keyfunc/v3"
	_ "github.com/coreos/go-oidc/v3/oidc"
	_ "github.com/fsnotify/fsnotify"
	_ "github.com/go-json-experiment/json"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/modelcontextprotocol/go-sdk/mcp"
	_ "github.com/pquerna/otp/totp"
	_ "github.com/santhosh-tekuri/jsonschema/v6"
	_ "github.com/spf13/cobra"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/crypto/argon2"
	_ "golang.org/x/mod/sumdb/tlog"
	_ "modernc.org/sqlite"
)
