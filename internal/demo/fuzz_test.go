package demo_test

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// FuzzCallTool sends arbitrary arguments to the tools. Whatever arrives, the server must
// answer (never crash or hang), and must answer in one of two ways: a protocol error
// -32602 for an unknown tool or unusable params, or a tool result; a successful result
// carries structured content and is the same when asked again.
func FuzzCallTool(f *testing.F) {
	// The checked-in corpus in testdata/fuzz/FuzzCallTool holds the seeds.
	cs := connect(f, "memory", modernVersion, optionsAt(fixedNow))
	f.Fuzz(func(t *testing.T, name, args string) {
		if !json.Valid([]byte(args)) || !utf8.ValidString(name) {
			return // the client library refuses to send these
		}
		ctx := context.Background()
		params := &mcp.CallToolParams{Name: name, Arguments: json.RawMessage(args)}
		res, err := cs.CallTool(ctx, params)
		if err != nil {
			var werr *jsonrpc.Error
			if !errors.As(err, &werr) || werr.Code != jsonrpc.CodeInvalidParams {
				t.Fatalf("call %q(%s): %v, want a tool result or a -32602 error", name, args, err)
			}
			return
		}
		if res.IsError {
			if res.StructuredContent != nil || resultText(res) == "" {
				t.Fatalf("call %q(%s): error result without a message or with structured content: %+v", name, args, res)
			}
			return
		}
		if res.StructuredContent == nil {
			t.Fatalf("call %q(%s): success without structured content", name, args)
		}
		again, err := cs.CallTool(ctx, params)
		if err != nil {
			t.Fatalf("second call %q(%s): %v", name, args, err)
		}
		if diff := cmp.Diff(res.StructuredContent, again.StructuredContent); diff != "" {
			t.Fatalf("call %q(%s) is not deterministic (-first +second):\n%s", name, args, diff)
		}
	})
}

var summaryURI = regexp.MustCompile(`^finance://clients/C100[1-6]/summary$`)

// FuzzReadResource reads arbitrary URIs. Exactly the disclaimer and the summaries of the
// six clients exist; anything else is "resource not found" (-32602).
func FuzzReadResource(f *testing.F) {
	// The checked-in corpus in testdata/fuzz/FuzzReadResource holds the seeds.
	cs := connect(f, "memory", modernVersion, optionsAt(fixedNow))
	f.Fuzz(func(t *testing.T, uri string) {
		if !utf8.ValidString(uri) {
			return // JSON would carry a different string
		}
		res, err := cs.ReadResource(context.Background(), &mcp.ReadResourceParams{URI: uri})
		exists := uri == "finance://disclaimer" || summaryURI.MatchString(uri)
		if !exists {
			var werr *jsonrpc.Error
			if !errors.As(err, &werr) || werr.Code != jsonrpc.CodeInvalidParams {
				t.Fatalf("read %q = %v, want resource not found (-32602)", uri, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("read %q: %v", uri, err)
		}
		if len(res.Contents) != 1 || res.Contents[0].URI != uri || strings.TrimSpace(res.Contents[0].Text) == "" {
			t.Fatalf("read %q = %+v, want one non-empty text for that URI", uri, res.Contents)
		}
	})
}
