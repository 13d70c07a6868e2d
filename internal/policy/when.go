package policy

import (
	"encoding/json"
	"strconv"
	"strings"

	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// jsonAdapter shows decoded JSON to when: conditions as it is, converting
// a value only when the condition reads it: a json.Number becomes an int
// when it is an integer that fits in 64 bits and a double otherwise, and
// objects and arrays are wrapped, not copied. So a condition that reads
// args.quantity does not pay for converting the other arguments.
type jsonAdapter struct{ reg *types.Registry }

func (a jsonAdapter) NativeToValue(v any) ref.Val {
	switch v := v.(type) {
	case json.Number:
		// Only what is written as an integer can be one; checking first spares the error that
		// a failed ParseInt allocates.
		if !strings.ContainsAny(string(v), ".eE") {
			if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
				return types.Int(i)
			}
		}
		f, _ := strconv.ParseFloat(string(v), 64) // ±Inf when out of range
		return types.Double(f)
	case map[string]any:
		return types.NewMap(a, v)
	case []any:
		return types.NewList(a, v)
	}
	return a.reg.NativeToValue(v)
}

// unknownSizes leaves every size to cel-go's estimate: unknown, so that
// anything whose cost grows with the input is estimated without bound.
type unknownSizes struct{}

func (unknownSizes) EstimateSize(cost.AstNode) *cost.SizeEstimate { return nil }
func (unknownSizes) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}
