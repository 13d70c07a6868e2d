package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const (
	disclaimerURI         = "finance://disclaimer"
	clientSummaryTemplate = "finance://clients/{client_id}/summary"
	clientSummaryPrefix   = "finance://clients/"
	clientSummarySuffix   = "/summary"
)

const disclaimerText = `DEMO DATA — NOT INVESTMENT ADVICE

Every price, index level, sector move, recommendation, client and order served by this
server is fictitious and generated from a hash of the request. Names, e-mail addresses,
phone numbers, addresses and IBANs belong to no real person; they only look real so that
redaction and access control can be demonstrated on them. Do not trade on this data.
`

// resourceNotFound is mcp.ResourceNotFoundError with the URI encoded as JSON. The go-sdk
// v1.8.0 version formats the URI with %q, which is not JSON for control characters; the
// unencodable reply then closes the connection (on stdio: the whole server).
func resourceNotFound(uri string) error {
	data, _ := json.Marshal(map[string]string{"uri": uri}) // a string always marshals
	return &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "Resource not found", Data: data}
}

// guardResourceURIs answers resources/read for a URI that the go-sdk could not report as
// not found (see resourceNotFound) before the request reaches it. No resource of this
// server has such a URI.
func guardResourceURIs(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if r, ok := req.(*mcp.ReadResourceRequest); ok && r.Params != nil {
			uri := r.Params.URI
			if !utf8.ValidString(uri) || strings.ContainsFunc(uri, func(c rune) bool { return !strconv.IsPrint(c) }) {
				return nil, resourceNotFound(uri)
			}
		}
		return next(ctx, method, req)
	}
}

func (s *server) addResources(srv *mcp.Server) {
	srv.AddReceivingMiddleware(guardResourceURIs)
	srv.AddResource(&mcp.Resource{
		URI:         disclaimerURI,
		Name:        "disclaimer",
		Title:       "Demo data disclaimer",
		Description: "States that all data served by this server is fictitious.",
		MIMEType:    "text/plain",
		Size:        int64(len(disclaimerText)),
	}, func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{
			URI: disclaimerURI, MIMEType: "text/plain", Text: disclaimerText,
		}}}, nil
	})

	srv.AddResourceTemplate(&mcp.ResourceTemplate{
		URITemplate: clientSummaryTemplate,
		Name:        "client_summary",
		Title:       "Client summary",
		Description: "A short Markdown summary of one client: name, contact details and portfolio value. Contains personal data.",
		MIMEType:    "text/markdown",
	}, s.readClientSummary)
}

// clientIDFromSummaryURI extracts the client id from finance://clients/{client_id}/summary.
// It accepts exactly that shape: no query, fragment, percent-encoding or extra segments.
func clientIDFromSummaryURI(uri string) (string, bool) {
	rest, ok := strings.CutPrefix(uri, clientSummaryPrefix)
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, clientSummarySuffix)
	if !ok || checkClientID(id) != nil {
		return "", false
	}
	return id, true
}

func (s *server) readClientSummary(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	uri := req.Params.URI
	id, ok := clientIDFromSummaryURI(uri)
	if !ok {
		return nil, resourceNotFound(uri)
	}
	c, ok := s.book[id]
	if !ok {
		return nil, resourceNotFound(uri)
	}
	p := s.portfolio(c)
	var b strings.Builder
	fmt.Fprintf(&b, "# %s (%s)\n\n", p.FullName, p.ClientID)
	fmt.Fprintf(&b, "- E-mail: %s\n- Phone: %s\n- Address: %s\n- IBAN: %s\n", p.Email, p.Phone, p.Address, p.IBAN)
	fmt.Fprintf(&b, "- Risk profile: %s\n- Total value: %.2f %s (cash %.2f) as of %s\n\n",
		p.RiskProfile, p.TotalValue, p.ValuationCurrency, p.CashBalance, p.AsOf)
	b.WriteString("| Symbol | Quantity | Value | Weight |\n|---|---:|---:|---:|\n")
	for _, h := range p.Holdings {
		fmt.Fprintf(&b, "| %s | %d | %.2f | %.2f%% |\n", h.Symbol, h.Quantity, h.MarketValue, h.WeightPercent)
	}
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{
		URI: uri, MIMEType: "text/markdown", Text: b.String(),
	}}}, nil
}

func (s *server) addPrompts(srv *mcp.Server) {
	srv.AddPrompt(&mcp.Prompt{
		Name:        "daily_briefing",
		Title:       "Daily market briefing",
		Description: "Asks the model for a morning briefing on one region, using the market overview and the sector heatmap.",
		Arguments: []*mcp.PromptArgument{{
			Name:        "region",
			Title:       "Region",
			Description: "One of " + strings.Join(regions, ", ") + ".",
			Required:    true,
		}},
	}, s.dailyBriefing)
}

func (s *server) dailyBriefing(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	region := req.Params.Arguments["region"]
	if !slices.Contains(regions, region) {
		return nil, &jsonrpc.Error{
			Code:    jsonrpc.CodeInvalidParams,
			Message: fmt.Sprintf("invalid region %q for prompt daily_briefing: want one of %s", region, quoteList(regions)),
		}
	}
	text := fmt.Sprintf(`Prepare the daily market briefing for %[1]s.
1. Call get_market_overview with market %[1]q and summarise the indices, breadth and sentiment.
2. Call get_sector_heatmap with region %[1]q and name the leading and lagging sectors.
3. Close with three bullet points an analyst should watch today.
Keep it under 200 words and end with: "Demo data, not investment advice."`, region)
	return &mcp.GetPromptResult{
		Description: "Daily market briefing for " + region,
		Messages: []*mcp.PromptMessage{{
			Role:    "user",
			Content: &mcp.TextContent{Text: text},
		}},
	}, nil
}
