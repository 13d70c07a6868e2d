package demo

import (
	"context"
	"sort"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// complete suggests values for the daily_briefing prompt's region and for the client id in the
// client summary template, those starting with what the client typed (case-insensitively).
func (s *server) complete(_ context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
	var candidates []string
	ref, arg := req.Params.Ref, req.Params.Argument
	switch {
	case ref == nil:
	case ref.Type == "ref/prompt" && ref.Name == "daily_briefing" && arg.Name == "region":
		candidates = regions
	case ref.Type == "ref/resource" && ref.URI == clientSummaryTemplate && arg.Name == "client_id":
		for id := range s.book {
			candidates = append(candidates, id)
		}
		sort.Strings(candidates)
	}
	values := []string{}
	for _, c := range candidates {
		if strings.HasPrefix(strings.ToLower(c), strings.ToLower(arg.Value)) {
			values = append(values, c)
		}
	}
	return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: values, Total: len(values)}}, nil
}

// subscribe accepts subscriptions to the server's resources; their content never changes, so no
// update follows.
func (s *server) subscribe(_ context.Context, req *mcp.SubscribeRequest) error {
	return knownResource(req.Params.URI)
}

func (s *server) unsubscribe(_ context.Context, req *mcp.UnsubscribeRequest) error {
	return knownResource(req.Params.URI)
}

func knownResource(uri string) error {
	if _, ok := clientIDFromSummaryURI(uri); ok || uri == disclaimerURI {
		return nil
	}
	return resourceNotFound(uri)
}
