//go:build tools

// Package tools pins modules that tests and fixtures use but no production package imports yet.
package tools

import (
	_ "github.com/go-json-experiment/json"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/modelcontextprotocol/go-sdk/mcp"
	_ "github.com/spf13/cobra"
	_ "go.yaml.in/yaml/v3"
)
