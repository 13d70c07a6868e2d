package demo_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestResources(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cs := connect(t, "memory", modernVersion, optionsAt(fixedNow))

	list, err := cs.ListResources(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Resources) != 1 || list.Resources[0].URI != "finance://disclaimer" || list.Resources[0].MIMEType != "text/plain" {
		t.Errorf("resources = %+v, want only finance://disclaimer as text/plain", list.Resources)
	}
	templates, err := cs.ListResourceTemplates(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(templates.ResourceTemplates) != 1 || templates.ResourceTemplates[0].URITemplate != "finance://clients/{client_id}/summary" {
		t.Errorf("templates = %+v, want only finance://clients/{client_id}/summary", templates.ResourceTemplates)
	}

	disclaimer, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "finance://disclaimer"})
	if err != nil {
		t.Fatal(err)
	}
	if len(disclaimer.Contents) != 1 || !strings.Contains(disclaimer.Contents[0].Text, "NOT INVESTMENT ADVICE") {
		t.Errorf("disclaimer = %+v", disclaimer.Contents)
	}
	if got, want := int64(len(disclaimer.Contents[0].Text)), list.Resources[0].Size; got != want {
		t.Errorf("disclaimer is %d bytes, listed size %d", got, want)
	}

	summary, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "finance://clients/C1002/summary"})
	if err != nil {
		t.Fatal(err)
	}
	p := structured[portfolio](t, cs, "get_client_portfolio", map[string]any{"client_id": "C1002"})
	c := summary.Contents[0]
	if c.URI != "finance://clients/C1002/summary" || c.MIMEType != "text/markdown" {
		t.Errorf("summary uri %q type %q", c.URI, c.MIMEType)
	}
	for _, want := range []string{"# James Whitfield (C1002)", p.Email, p.Phone, p.IBAN, "| NVDA | 120 |"} {
		if !strings.Contains(c.Text, want) {
			t.Errorf("summary lacks %q:\n%s", want, c.Text)
		}
	}

	for _, uri := range []string{
		// Control characters first: the go-sdk alone would close the connection on
		// these, and the reads after them check that it is still open.
		"finance://clients/C1001\x10x/summary",
		"unknown\x7f",
		"finance://clients/C9999/summary", // well-formed, no such client
		"finance://clients/c1002/summary",
		"finance://clients/C1002/summary?x=1",
		"finance://clients/C1002/holdings",
		"finance://clients/C1002/x/summary",
		"finance://unknown",
	} {
		_, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		var werr *jsonrpc.Error
		if !errors.As(err, &werr) || werr.Code != jsonrpc.CodeInvalidParams {
			t.Errorf("ReadResource(%s): error %v, want resource not found (-32602)", uri, err)
		}
	}
}

func TestDailyBriefingPrompt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cs := connect(t, "memory", modernVersion, nil)

	list, err := cs.ListPrompts(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Prompts) != 1 {
		t.Fatalf("prompts = %+v, want one", list.Prompts)
	}
	want := []*mcp.PromptArgument{{Name: "region", Title: "Region", Description: "One of Vietnam, Global, US, Europe, Asia.", Required: true}}
	if diff := cmp.Diff(want, list.Prompts[0].Arguments); diff != "" || list.Prompts[0].Name != "daily_briefing" {
		t.Errorf("prompt %s arguments (-want +got):\n%s", list.Prompts[0].Name, diff)
	}

	res, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "daily_briefing", Arguments: map[string]string{"region": "Vietnam"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Messages) != 1 || res.Messages[0].Role != "user" {
		t.Fatalf("messages = %+v, want one user message", res.Messages)
	}
	text := res.Messages[0].Content.(*mcp.TextContent).Text
	for _, want := range []string{"Vietnam", "get_market_overview", "get_sector_heatmap"} {
		if !strings.Contains(text, want) {
			t.Errorf("briefing lacks %q:\n%s", want, text)
		}
	}

	for _, args := range []map[string]string{{"region": "Mars"}, {}, nil} {
		_, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "daily_briefing", Arguments: args})
		var werr *jsonrpc.Error
		if !errors.As(err, &werr) || werr.Code != jsonrpc.CodeInvalidParams || !strings.Contains(werr.Message, "region") {
			t.Errorf("GetPrompt(%v): error %v, want invalid params naming region", args, err)
		}
	}
}
