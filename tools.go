//go:build tools

// Package tools pins the modules that only tests and test fixtures (such as
// internal/store/storetest) import and no production package does. A module a production package
// imports needs no pin and is not listed here.
package tools

import (
	_ "github.com/google/go-cmp/cmp"
)
