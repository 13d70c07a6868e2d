package toolschema

import (
	"errors"
	"strings"
	"testing"
)

const tradeSchema = `{"type":"object","properties":{
	"symbol":{"type":"string","pattern":"^[A-Z]{1,5}$"},
	"quantity":{"type":"integer","minimum":1},
	"order":{"type":"object","properties":{"limitPrice":{"type":"number"}}},
	"legs":{"type":"array","items":{"type":"object","properties":{"side":{"enum":["buy","sell"]}}}}
},"required":["symbol"]}`

func TestCheck(t *testing.T) {
	s, err := Compile([]byte(tradeSchema))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, args string
		want       string // a part of the error; "" means valid
	}{
		{"valid", `{"symbol":"VNM","quantity":3}`, ""},
		{"valid nested", `{"symbol":"VNM","order":{"limitPrice":1.5},"legs":[{"side":"buy"}]}`, ""},
		{"unknown member passes the schema", `{"symbol":"VNM","note":"x"}`, ""},
		{"case variant", `{"symbol":"VNM","Quantity":3}`, `"Quantity" is not the declared "quantity"`},
		{"case variant of a required one", `{"Symbol":"AAPL"}`, `"Symbol" is not the declared "symbol"`},
		{"long s", `{"ſymbol":"AAPL"}`, `is not the declared "symbol"`},
		{"fullwidth", `{"ｓｙｍｂｏｌ":"AAPL"}`, `is not the declared "symbol"`},
		{"zero-width space", `{"symbol":"VNM","quantity\u200b":3}`, `is not the declared "quantity"`},
		{"trailing space", `{"symbol":"VNM","quantity ":3}`, `is not the declared "quantity"`},
		{"nested case variant", `{"symbol":"VNM","order":{"LimitPrice":1}}`, `"order/LimitPrice" is not the declared "order/limitPrice"`},
		{"case variant in array items", `{"symbol":"VNM","legs":[{"side":"buy"},{"SIDE":"sell"}]}`, `"legs/1/SIDE" is not the declared "legs/1/side"`},
		{"pattern", `{"symbol":"vnm"}`, "at /symbol"},
		{"type", `{"symbol":"VNM","quantity":"3"}`, "at /quantity"},
		{"missing required", `{}`, "symbol"},
		{"enum in items", `{"symbol":"VNM","legs":[{"side":"hold"}]}`, "at /legs/0/side"},
		{"null optional is not provided", `{"symbol":"VNM","quantity":null}`, ""},
		{"null required is still checked", `{"symbol":null}`, "at /symbol"},
		{"null nested is still checked", `{"symbol":"VNM","order":{"limitPrice":null}}`, "at /order/limitPrice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, err := Decode([]byte(tt.args))
			if err != nil {
				t.Fatal(err)
			}
			err = s.Check(args)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Check(%s) = %v, want valid", tt.args, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Check(%s) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestCompileRefuses(t *testing.T) {
	tests := []struct{ name, schema, want string }{
		{"none", ``, "no inputSchema"},
		{"not JSON", `{`, "not JSON"},
		{"not an object", `[1]`, "not an object"},
		{"wrong type", `{"type":"string"}`, "type string"},
		{"remote ref", `{"type":"object","properties":{"a":{"$ref":"https://example.com/s.json"}}}`, "inputSchema"},
		{"file ref", `{"type":"object","properties":{"a":{"$ref":"file:///etc/passwd"}}}`, "inputSchema"},
		{"bad pattern", `{"type":"object","properties":{"a":{"type":"string","pattern":"("}}}`, "inputSchema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile([]byte(tt.schema))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Compile(%s) = %v, want an error containing %q", tt.schema, err, tt.want)
			}
		})
	}
	if _, err := Compile(nil); !errors.Is(err, ErrNoSchema) {
		t.Errorf("Compile(nil) = %v, want ErrNoSchema", err)
	}
}

func TestLookAlike(t *testing.T) {
	args, _ := Decode([]byte(`{"Region":"US","days":3}`))
	if name, like := LookAlike(args, []string{"region", "days"}); name != "Region" || like != "region" {
		t.Errorf("LookAlike = %q, %q; want Region, region", name, like)
	}
	args, _ = Decode([]byte(`{"region":"US"}`))
	if name, _ := LookAlike(args, []string{"region"}); name != "" {
		t.Errorf("the declared name itself is reported: %q", name)
	}
}

// FuzzCheck compiles any schema and checks any arguments against it: never a panic, and a name
// reported as a look-alike is never the declared name itself.
func FuzzCheck(f *testing.F) {
	f.Add([]byte(tradeSchema), []byte(`{"Symbol":"AAPL"}`))
	f.Add([]byte(`{"type":"object","properties":{"k":{}}}`), []byte(`{"K":1}`))
	f.Add([]byte(`{"type":"object","items":{"properties":{"a":{}}}}`), []byte(`[{"A":1}]`))
	f.Fuzz(func(t *testing.T, schema, args []byte) {
		s, err := Compile(schema)
		if err != nil {
			return
		}
		v, err := Decode(args)
		if err != nil {
			return
		}
		if err := s.Check(v); err != nil && err.Error() == "" {
			t.Fatal("an empty error")
		}
	})
}
