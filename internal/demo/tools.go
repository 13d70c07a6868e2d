package demo

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Tool input is checked twice: by the go-sdk against the published JSON Schema (a violation
// becomes a tool result with isError, as SEP-1303 asks), and again by each handler, so the
// handlers stay correct on their own and give the specific messages.
//
// The schemas state defaults in descriptions, never with the "default" keyword: go-sdk
// v1.8.0 panics, and takes the whole server down, when it applies a default to a call whose
// "arguments" is JSON null (jsonschema-go assigns into a nil map).

const (
	symbolPattern   = `^[A-Z]{1,10}$`
	clientIDPattern = `^C[0-9]{4}$`
	phonePattern    = `^\+[1-9][0-9]{6,14}$`
)

var (
	symbolRE   = regexp.MustCompile(symbolPattern)
	clientIDRE = regexp.MustCompile(clientIDPattern)
)

func checkSymbol(symbol string) error {
	if !symbolRE.MatchString(symbol) {
		return fmt.Errorf("invalid symbol %q: want 1 to 10 upper-case letters A-Z, e.g. VNM", symbol)
	}
	return nil
}

func checkClientID(id string) error {
	if !clientIDRE.MatchString(id) {
		return fmt.Errorf("invalid client_id %q: want C followed by four digits, e.g. C1001", id)
	}
	return nil
}

// quoteList renders values as "a", "b", "c" for error messages.
func quoteList(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

// toolHints sets all four behaviour hints explicitly, so no client falls back to the
// spec's defaults (which assume a destructive, open-world tool).
func toolHints(title string, readOnly, destructive, idempotent, openWorld bool) *mcp.ToolAnnotations {
	return &mcp.ToolAnnotations{
		Title:           title,
		ReadOnlyHint:    readOnly,
		DestructiveHint: &destructive,
		IdempotentHint:  idempotent,
		OpenWorldHint:   &openWorld,
	}
}

// schemaFor infers the JSON Schema of T (descriptions from jsonschema tags, required from
// the absence of omitempty/omitzero, no additional properties) and lets edit add the
// constraints that struct tags cannot express. The types are fixed at compile time, so a
// failure is a programming error caught by any test that builds a server.
func schemaFor[T any](edit func(props map[string]*jsonschema.Schema)) *jsonschema.Schema {
	s, err := jsonschema.For[T](nil)
	if err != nil {
		panic(fmt.Sprintf("demo: schema of %T: %v", *new(T), err))
	}
	// Inference allows null for slices; the handlers always return arrays.
	for _, p := range s.Properties {
		if slices.Equal(p.Types, []string{"null", "array"}) {
			p.Types, p.Type = nil, "array"
		}
	}
	if edit != nil {
		edit(s.Properties)
	}
	return s
}

func enumOf(values ...string) []any {
	out := make([]any, len(values))
	for i, v := range values {
		out[i] = v
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func (s *server) addTools(srv *mcp.Server) {
	symbol := func(p map[string]*jsonschema.Schema) {
		p["symbol"].Pattern = symbolPattern
		p["symbol"].MinLength, p["symbol"].MaxLength = ptr(1), ptr(10)
		p["symbol"].Examples = []any{"VNM", "MSFT"}
	}
	clientID := func(p map[string]*jsonschema.Schema) {
		p["client_id"].Pattern = clientIDPattern
		p["client_id"].Examples = []any{"C1001"}
	}
	regionEnum := func(s *jsonschema.Schema) { s.Enum = enumOf(regions...) }

	mcp.AddTool(srv, &mcp.Tool{
		Name:        "get_stock_analysis",
		Description: "Technical analysis of one stock: last price, change and volume over a period, moving averages, RSI and a buy/hold/sell recommendation. Demo data, not investment advice.",
		Annotations: toolHints("Stock analysis", true, false, true, false),
		InputSchema: schemaFor[stockAnalysisInput](func(p map[string]*jsonschema.Schema) {
			symbol(p)
			p["period"].Enum = enumOf(periods...)
		}),
		OutputSchema: schemaFor[stockAnalysis](func(p map[string]*jsonschema.Schema) {
			p["period"].Enum = enumOf(periods...)
			p["recommendation"].Enum = enumOf("buy", "hold", "sell")
			p["as_of"].Format = "date-time"
		}),
	}, s.stockAnalysis)

	mcp.AddTool(srv, &mcp.Tool{
		Name:        "get_market_overview",
		Description: "Main indices of a market or region with their daily change, market breadth and overall sentiment. Demo data.",
		Annotations: toolHints("Market overview", true, false, true, false),
		InputSchema: schemaFor[marketOverviewInput](func(p map[string]*jsonschema.Schema) {
			regionEnum(p["market"])
		}),
		OutputSchema: schemaFor[marketOverview](func(p map[string]*jsonschema.Schema) {
			regionEnum(p["market"])
			p["sentiment"].Enum = enumOf("risk-on", "neutral", "risk-off")
			p["as_of"].Format = "date-time"
		}),
	}, s.marketOverview)

	mcp.AddTool(srv, &mcp.Tool{
		Name:        "get_sector_heatmap",
		Description: "Daily performance of the eleven GICS sectors in a region, with the leading and lagging sector. Demo data.",
		Annotations: toolHints("Sector heatmap", true, false, true, false),
		InputSchema: schemaFor[sectorHeatmapInput](func(p map[string]*jsonschema.Schema) {
			regionEnum(p["region"])
			// 2026-07-28 clients mirror this argument into an Mcp-Param-Region header, so
			// intermediaries can route or authorize on it without reading the body.
			p["region"].Extra = map[string]any{"x-mcp-header": "Region"}
		}),
		OutputSchema: schemaFor[sectorHeatmap](func(p map[string]*jsonschema.Schema) {
			regionEnum(p["region"])
			p["sectors"].Items.Properties["trend"].Enum = enumOf("strong_gain", "gain", "flat", "loss", "strong_loss")
			p["as_of"].Format = "date-time"
		}),
	}, s.sectorHeatmap)

	mcp.AddTool(srv, &mcp.Tool{
		Name:        "get_client_portfolio",
		Description: "A client's identity and contact details (name, e-mail, phone, address, IBAN, account number) and holdings valued at the last price. Returns personal data.",
		Annotations: toolHints("Client portfolio", true, false, true, false),
		InputSchema: schemaFor[clientInput](clientID),
		OutputSchema: schemaFor[clientPortfolio](func(p map[string]*jsonschema.Schema) {
			p["risk_profile"].Enum = enumOf("conservative", "balanced", "growth", "aggressive")
			p["email"].Format = "email"
			p["phone"].Pattern = phonePattern
			p["as_of"].Format = "date-time"
		}),
	}, s.clientPortfolio)

	mcp.AddTool(srv, &mcp.Tool{
		Name:        "execute_trade_order",
		Description: "Places a buy or sell order for a client and returns the accepted order. Market orders execute at the best available price, limit orders at limit_price or better. A sell may not exceed the client's holding.",
		// Not idempotent: the order it models would be placed again on every call, even
		// though the demo derives the same order_id from the same fields.
		Annotations: toolHints("Execute trade order", false, true, false, true),
		InputSchema: schemaFor[tradeOrderInput](func(p map[string]*jsonschema.Schema) {
			clientID(p)
			symbol(p)
			p["side"].Enum = enumOf("buy", "sell")
			p["quantity"].Minimum = ptr(1.0)
			p["quantity"].Maximum = ptr(float64(maxOrderQuantity))
			p["order_type"].Enum = enumOf("market", "limit")
			p["limit_price"].ExclusiveMinimum = ptr(0.0)
		}),
		OutputSchema: schemaFor[tradeOrder](func(p map[string]*jsonschema.Schema) {
			p["status"].Enum = enumOf("accepted")
			p["side"].Enum = enumOf("buy", "sell")
			p["order_type"].Enum = enumOf("market", "limit")
			p["submitted_at"].Format = "date-time"
		}),
	}, s.tradeOrder)

	mcp.AddTool(srv, &mcp.Tool{
		Name:        "update_client_profile",
		Description: "Changes a client's e-mail address, phone number or postal address (give at least one) and returns the updated profile. The demo book is not modified: later reads still return the original data.",
		Annotations: toolHints("Update client profile", false, true, true, false),
		InputSchema: schemaFor[profileUpdateInput](func(p map[string]*jsonschema.Schema) {
			clientID(p)
			p["email"].Format = "email"
			p["email"].MaxLength = ptr(254)
			p["phone"].Pattern = phonePattern
			p["address"].MinLength = ptr(5)
			p["address"].MaxLength = ptr(maxAddressLen)
		}),
		OutputSchema: schemaFor[clientProfile](func(p map[string]*jsonschema.Schema) {
			p["changed_fields"].Items.Enum = enumOf("email", "phone", "address")
			p["updated_at"].Format = "date-time"
		}),
	}, s.profileUpdate)
}
