package demo_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/demo"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

var fixedNow = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

const (
	legacyVersion = "2025-11-25"
	modernVersion = "2026-07-28"
	mountPath     = "/tenants/acme/finance"
)

var toolNames = []string{
	"execute_trade_order",
	"get_client_portfolio",
	"get_market_overview",
	"get_sector_heatmap",
	"get_stock_analysis",
	"update_client_profile",
}

func optionsAt(now time.Time) *demo.Options {
	return &demo.Options{Now: func() time.Time { return now }}
}

// connect starts a fresh demo server and returns a client session to it over the named
// transport ("memory", "stdio" or "http"), asking for the given protocol version.
func connect(tb testing.TB, transport, version string, opts *demo.Options) *mcp.ClientSession {
	tb.Helper()
	ctx := context.Background()
	client := mcp.NewClient(&mcp.Implementation{Name: "demo-test", Version: "1"}, nil)
	sessOpts := &mcp.ClientSessionOptions{ProtocolVersion: version}
	var (
		cs  *mcp.ClientSession
		err error
	)
	switch transport {
	case "memory":
		ct, st := mcp.NewInMemoryTransports()
		ss, serr := demo.NewServer(opts).Connect(ctx, st, nil)
		if serr != nil {
			tb.Fatalf("server connect: %v", serr)
		}
		tb.Cleanup(func() { ss.Close() })
		cs, err = client.Connect(ctx, ct, sessOpts)
	case "stdio":
		clientIn, serverOut := io.Pipe()
		serverIn, clientOut := io.Pipe()
		done := make(chan error, 1)
		go func() { done <- demo.ServeStdio(ctx, serverIn, serverOut, opts) }()
		tb.Cleanup(func() {
			// Runs after the session is closed, which ends the server's input.
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("ServeStdio after the client closed its end = %v, want nil", err)
				}
			case <-time.After(5 * time.Second):
				tb.Error("ServeStdio did not return after its input ended")
			}
		})
		cs, err = client.Connect(ctx, &mcp.IOTransport{Reader: clientIn, Writer: clientOut}, sessOpts)
	case "http":
		ts := newHTTPServer(tb, opts)
		cs, err = client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: ts.URL + mountPath}, sessOpts)
	default:
		tb.Fatalf("unknown transport %q", transport)
	}
	if err != nil {
		tb.Fatalf("connect over %s at %s: %v", transport, version, err)
	}
	tb.Cleanup(func() { cs.Close() })
	return cs
}

// newHTTPServer serves HTTPHandler on a loopback listener under mountPath.
func newHTTPServer(tb testing.TB, opts *demo.Options) *httptest.Server {
	tb.Helper()
	mux := http.NewServeMux()
	mux.Handle(mountPath, demo.HTTPHandler(opts))
	ts := httptest.NewServer(mux)
	tb.Cleanup(ts.Close)
	return ts
}

func call(tb testing.TB, cs *mcp.ClientSession, name string, args any) *mcp.CallToolResult {
	tb.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		tb.Fatalf("call %s(%v): %v", name, args, err)
	}
	return res
}

// structured calls a tool that must succeed and decodes its structured content into T.
func structured[T any](tb testing.TB, cs *mcp.ClientSession, name string, args any) T {
	tb.Helper()
	res := call(tb, cs, name, args)
	if res.IsError {
		tb.Fatalf("call %s(%v) failed: %s", name, args, resultText(res))
	}
	var out T
	if err := remarshal(res.StructuredContent, &out); err != nil {
		tb.Fatalf("call %s(%v): decode structured content: %v", name, args, err)
	}
	return out
}

func remarshal(from, to any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	if err := d.Decode(to); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data")
	}
	return nil
}

func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// Shapes of the structured results, as a client sees them. Decoding disallows unknown
// fields, so a field added or renamed on the server fails the tests that use these.

type stockAnalysis struct {
	Symbol         string  `json:"symbol"`
	Period         string  `json:"period"`
	Currency       string  `json:"currency"`
	AsOf           string  `json:"as_of"`
	Price          float64 `json:"price"`
	Change         float64 `json:"change"`
	ChangePercent  float64 `json:"change_percent"`
	Volume         int64   `json:"volume"`
	MovingAverages struct {
		SMA20  float64 `json:"sma_20"`
		SMA50  float64 `json:"sma_50"`
		SMA200 float64 `json:"sma_200"`
	} `json:"moving_averages"`
	RSI14          float64 `json:"rsi_14"`
	Recommendation string  `json:"recommendation"`
	Rationale      string  `json:"rationale"`
}

type marketOverview struct {
	Market  string `json:"market"`
	AsOf    string `json:"as_of"`
	Indices []struct {
		Name          string  `json:"name"`
		Value         float64 `json:"value"`
		Change        float64 `json:"change"`
		ChangePercent float64 `json:"change_percent"`
	} `json:"indices"`
	Breadth struct {
		Advancers int64 `json:"advancers"`
		Decliners int64 `json:"decliners"`
		Unchanged int64 `json:"unchanged"`
	} `json:"breadth"`
	Sentiment string `json:"sentiment"`
}

type sectorHeatmap struct {
	Region  string `json:"region"`
	AsOf    string `json:"as_of"`
	Sectors []struct {
		Sector        string  `json:"sector"`
		ChangePercent float64 `json:"change_percent"`
		Trend         string  `json:"trend"`
	} `json:"sectors"`
	Leader  string `json:"leader"`
	Laggard string `json:"laggard"`
}

type portfolio struct {
	ClientID          string  `json:"client_id"`
	FullName          string  `json:"full_name"`
	Email             string  `json:"email"`
	Phone             string  `json:"phone"`
	Address           string  `json:"address"`
	IBAN              string  `json:"iban"`
	AccountNumber     string  `json:"account_number"`
	RiskProfile       string  `json:"risk_profile"`
	ValuationCurrency string  `json:"valuation_currency"`
	CashBalance       float64 `json:"cash_balance"`
	Holdings          []struct {
		Symbol        string  `json:"symbol"`
		Quantity      int64   `json:"quantity"`
		Price         float64 `json:"price"`
		MarketValue   float64 `json:"market_value"`
		WeightPercent float64 `json:"weight_percent"`
	} `json:"holdings"`
	TotalValue float64 `json:"total_value"`
	AsOf       string  `json:"as_of"`
}

type tradeOrder struct {
	OrderID        string  `json:"order_id"`
	Status         string  `json:"status"`
	ClientID       string  `json:"client_id"`
	Symbol         string  `json:"symbol"`
	Side           string  `json:"side"`
	Quantity       int64   `json:"quantity"`
	OrderType      string  `json:"order_type"`
	LimitPrice     float64 `json:"limit_price"`
	EstimatedPrice float64 `json:"estimated_price"`
	EstimatedValue float64 `json:"estimated_value"`
	Currency       string  `json:"currency"`
	SubmittedAt    string  `json:"submitted_at"`
}

type clientProfile struct {
	ClientID      string   `json:"client_id"`
	FullName      string   `json:"full_name"`
	Email         string   `json:"email"`
	Phone         string   `json:"phone"`
	Address       string   `json:"address"`
	ChangedFields []string `json:"changed_fields"`
	UpdatedAt     string   `json:"updated_at"`
}
