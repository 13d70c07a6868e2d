// Package mcp holds the Model Context Protocol facts the gateway relies on — versions and eras,
// header and _meta names, error codes, method tables, header-value encoding, x-mcp-header
// bindings and header/body validation — as pure functions without I/O.
package mcp
