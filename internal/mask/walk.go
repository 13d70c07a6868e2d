package mask

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/mcpguard/mcpguard/internal/redact"
)

// walker applies a plan to one result. It reads the input once, validating it as it goes (RFC
// 8259 syntax, UTF-8, depth), copies what no rule touches byte for byte, and writes what it
// masks. It is pooled by its plan; its buffers are reused.
type walker struct {
	p                  *Plan
	tok                Tokenizer
	in, out            []byte
	counts             []int // by rule index
	changed            bool
	depth              int
	maxDepth, maxBytes int
	// nodes holds the sets of path nodes that match the values being walked, one slice of it
	// per level; a level truncates it back when done.
	nodes []*node
	text  []byte // a text block, unquoted
	sub   []byte // a text block's JSON, masked
	str   []byte // a string value, unquoted
	name  []byte // a member name, unquoted
	repl  []byte // a masked string being built
	repl2 []byte // and the one before it
	norm  []byte // a datum normalised for its token
	spans []span
	// clean remembers member names and short strings in which the detectors found nothing:
	// names repeat in every row of a table, and so do many values.
	clean map[string]struct{}
}

// Bounds of walker.clean.
const (
	maxClean      = 1024
	maxCleanBytes = 128
)

// isClean reports whether the detectors are known to find nothing in s.
func (w *walker) isClean(s []byte) bool {
	_, ok := w.clean[string(s)]
	return ok
}

// remember notes that the detectors found nothing in s.
func (w *walker) remember(s []byte) {
	if len(s) > maxCleanBytes || len(w.clean) >= maxClean {
		return
	}
	if w.clean == nil {
		w.clean = map[string]struct{}{}
	}
	w.clean[string(s)] = struct{}{}
}

// result walks the CallToolResult object: content and structuredContent are masked, every
// other member is copied.
func (w *walker) result() error {
	i := skipWS(w.in, 0)
	if i >= len(w.in) || w.in[i] != '{' {
		return ErrNotResult
	}
	end, err := w.members(i, func(name []byte, i int) (int, error) {
		switch string(name) {
		case "structuredContent":
			if w.p.root == nil && !w.p.anyDt {
				break
			}
			mark := len(w.nodes)
			if w.p.root != nil {
				w.nodes = append(w.nodes, w.p.root)
			}
			end, err := w.value(i, w.nodes[mark:], w.p.anyDt)
			w.nodes = w.nodes[:mark]
			return end, err
		case "content":
			if w.in[i] == '[' {
				return w.elements(i, w.block)
			}
		}
		return w.copyValue(i)
	})
	if err != nil {
		return err
	}
	if skipWS(w.in, end) != len(w.in) {
		return fmt.Errorf("%w: data after the result", ErrInvalid)
	}
	return w.bound()
}

// block walks one content block: its text, and the text of an embedded resource.
func (w *walker) block(i int) (int, error) {
	if w.in[i] != '{' {
		return w.copyValue(i)
	}
	return w.members(i, func(name []byte, i int) (int, error) {
		switch {
		case string(name) == "text" && w.in[i] == '"':
			return w.textBlock(i)
		case string(name) == "resource" && w.in[i] == '{':
			return w.members(i, func(name []byte, i int) (int, error) {
				if string(name) == "text" && w.in[i] == '"' {
					return w.textBlock(i)
				}
				return w.copyValue(i)
			})
		}
		return w.copyValue(i)
	})
}

// textBlock masks the text of a content block. Text that is a JSON object or array (a tool returning
// structured content returns it serialised as text too) is masked like structuredContent, paths
// included; any other text by the detectors.
func (w *walker) textBlock(i int) (int, error) {
	if w.p.root == nil && !w.p.anyDt {
		return w.copyValue(i)
	}
	var err error
	var end int
	if w.text, end, err = unquote(w.text[:0], w.in, i); err != nil {
		return 0, err
	}
	raw, s := w.in[i:end], w.text
	if j := skipWS(s, 0); j < len(s) && (s[j] == '{' || s[j] == '[') {
		masked, ok, err := w.jsonText(s, j)
		if err != nil {
			return 0, err
		}
		if ok {
			if masked == nil {
				w.out = append(w.out, raw...)
				return end, nil
			}
			return end, w.emit(masked)
		}
	}
	if !w.p.anyDt {
		w.out = append(w.out, raw...)
		return end, nil
	}
	return end, w.detectString(raw, s)
}

// jsonText masks s, a text block's text that starts at s[j] like a JSON object or array, as
// structuredContent is masked. ok is false when s is not JSON after all (it is then text for the
// detectors, and what the attempt counted is taken back); masked is nil when nothing in it was
// masked. It is the one pass over the text: it validates as it masks.
func (w *walker) jsonText(s []byte, j int) (masked []byte, ok bool, err error) {
	var saved [16]int
	counts := saved[:0]
	if len(w.counts) > len(saved) {
		counts = make([]int, 0, len(w.counts))
	}
	counts = append(counts, w.counts...)
	in, out, changed, depth := w.in, w.out, w.changed, w.depth
	w.in, w.out, w.changed = s, w.sub[:0], false
	mark := len(w.nodes)
	if w.p.root != nil {
		w.nodes = append(w.nodes, w.p.root)
	}
	end, err := w.value(j, w.nodes[mark:], w.p.anyDt)
	w.nodes = w.nodes[:mark]
	sub, subChanged := w.out, w.changed
	w.in, w.out, w.changed, w.depth = in, out, changed, depth
	w.sub = sub[:0]
	switch {
	case errors.Is(err, ErrTooLarge):
		return nil, false, err
	case err != nil || skipWS(s, end) != len(s):
		copy(w.counts, counts) // not JSON: the text goes to the detectors
		return nil, false, nil
	case !subChanged:
		return nil, true, nil
	}
	return sub, true, nil
}

// value walks the value at in[i], which the path nodes in set match (none: only detectors
// apply to it). det says whether the detectors look into it.
func (w *walker) value(i int, set []*node, det bool) (int, error) {
	if len(set) == 0 && !det {
		return w.copyValue(i)
	}
	if i >= len(w.in) {
		return 0, ErrInvalid
	}
	switch c := w.in[i]; {
	case c == '{':
		return w.object(i, set, det)
	case c == '[':
		return w.array(i, set, det)
	case c == '"':
		raw, s, err := w.string(i)
		if err != nil {
			return 0, err
		}
		return i + len(raw), w.detectString(raw, s)
	case c == '-' || isDigit(c):
		end, err := scanNumber(w.in, i)
		if err != nil {
			return 0, err
		}
		return end, w.detectNumber(w.in[i:end])
	}
	return w.copyValue(i)
}

func (w *walker) object(i int, set []*node, det bool) (int, error) {
	if err := w.enter(); err != nil {
		return 0, err
	}
	defer w.leave()
	in := w.in
	w.out = append(w.out, '{')
	i = skipWS(in, i+1)
	if i < len(in) && in[i] == '}' {
		w.out = append(w.out, '}')
		return i + 1, nil
	}
	first := true
	for {
		if i >= len(in) || in[i] != '"' {
			return 0, ErrInvalid
		}
		nameEnd, esc, err := scanString(in, i)
		if err != nil {
			return 0, err
		}
		rawName := in[i:nameEnd]
		name := rawName[1 : len(rawName)-1]
		if esc { // w.name is free: a name is used before the walk goes deeper
			if w.name, _, err = unquote(w.name[:0], rawName, 0); err != nil {
				return 0, err
			}
			name = w.name
		}
		i = skipWS(in, nameEnd)
		if i >= len(in) || in[i] != ':' {
			return 0, ErrInvalid
		}
		i = skipWS(in, i+1)
		mark := len(w.nodes)
		var act Action
		var rule int
		for _, n := range set {
			if c := n.members[string(name)]; c != nil {
				act, rule = w.follow(c, act, rule)
			}
			if n.any != nil {
				act, rule = w.follow(n.any, act, rule)
			}
		}
		child := w.nodes[mark:]
		// A member name is data too: one in which a detector finds a datum is replaced by its
		// token (partial or "[redacted]" could make two names equal), or the member dropped.
		var newName string
		if act != Drop && det && w.p.anyDt {
			var dropMember bool
			if newName, dropMember = w.detectName(name); dropMember {
				act = Drop
				rule = -1
			}
		}
		if act == Drop {
			end, err := scanValue(in, i, w.depth, w.maxDepth)
			if err != nil {
				return 0, err
			}
			if rule >= 0 && !bytes.Equal(in[i:end], []byte("null")) {
				w.counts[rule]++
			}
			w.changed = true
			i = end
		} else {
			if !first {
				w.out = append(w.out, ',')
			}
			first = false
			if newName != "" {
				w.out = append(w.out, '"')
				w.out = append(w.out, newName...) // a token: nothing to escape
				w.out = append(w.out, '"')
			} else {
				w.out = append(w.out, rawName...)
			}
			w.out = append(w.out, ':')
			if act != 0 {
				i, err = w.maskWhole(i, act, rule)
			} else {
				i, err = w.value(i, child, det)
			}
			if err != nil {
				return 0, err
			}
		}
		w.nodes = w.nodes[:mark]
		i = skipWS(in, i)
		if i >= len(in) {
			return 0, ErrInvalid
		}
		switch in[i] {
		case ',':
			i = skipWS(in, i+1)
		case '}':
			w.out = append(w.out, '}')
			return i + 1, nil
		default:
			return 0, ErrInvalid
		}
	}
}

// follow adds the node c to the current level's set, and returns the action that masks the
// whole value: the most restrictive of the paths ending here.
func (w *walker) follow(c *node, act Action, rule int) (Action, int) {
	if c.act > act {
		act, rule = c.act, c.rule
	}
	if c.members != nil || c.indices != nil || c.any != nil {
		w.nodes = append(w.nodes, c)
	}
	return act, rule
}

func (w *walker) array(i int, set []*node, det bool) (int, error) {
	if err := w.enter(); err != nil {
		return 0, err
	}
	defer w.leave()
	in := w.in
	w.out = append(w.out, '[')
	i = skipWS(in, i+1)
	if i < len(in) && in[i] == ']' {
		w.out = append(w.out, ']')
		return i + 1, nil
	}
	for idx := 0; ; idx++ {
		if idx > 0 {
			w.out = append(w.out, ',')
		}
		mark := len(w.nodes)
		var act Action
		var rule int
		for _, n := range set {
			if c := n.indices[idx]; c != nil {
				act, rule = w.follow(c, act, rule)
			}
			if n.any != nil {
				act, rule = w.follow(n.any, act, rule)
			}
		}
		var err error
		switch {
		case act == Drop:
			var end int
			if end, err = scanValue(in, i, w.depth, w.maxDepth); err == nil {
				if !bytes.Equal(in[i:end], []byte("null")) {
					w.counts[rule]++
					w.changed = true
				}
				w.out = append(w.out, "null"...)
				i = end
			}
		case act != 0:
			i, err = w.maskWhole(i, act, rule)
		default:
			i, err = w.value(i, w.nodes[mark:], det)
		}
		w.nodes = w.nodes[:mark]
		if err != nil {
			return 0, err
		}
		i = skipWS(in, i)
		if i >= len(in) {
			return 0, ErrInvalid
		}
		switch in[i] {
		case ',':
			i = skipWS(in, i+1)
		case ']':
			w.out = append(w.out, ']')
			return i + 1, nil
		default:
			return 0, ErrInvalid
		}
	}
}

// maskWhole masks the value at in[i] with act (partial or pseudonymise): a string, number or
// boolean is replaced by a string; in an object or array every such value is, names and
// structure kept; null stays null.
func (w *walker) maskWhole(i int, act Action, rule int) (int, error) {
	in := w.in
	if i >= len(in) {
		return 0, ErrInvalid
	}
	switch c := in[i]; {
	case c == '{':
		return w.members(i, func(_ []byte, i int) (int, error) { return w.maskWhole(i, act, rule) })
	case c == '[':
		return w.elements(i, func(i int) (int, error) { return w.maskWhole(i, act, rule) })
	case c == '"':
		raw, s, err := w.string(i)
		if err != nil {
			return 0, err
		}
		return i + len(raw), w.maskScalar(raw, s, act, rule)
	case c == 'n':
		return w.copyValue(i)
	}
	end, err := scanValue(in, i, w.depth, w.maxDepth)
	if err != nil {
		return 0, err
	}
	return end, w.maskScalar(in[i:end], in[i:end], act, rule)
}

// string reads the string at in[i]: raw as written, and its text.
func (w *walker) string(i int) (raw, s []byte, err error) {
	end, esc, err := scanString(w.in, i)
	if err != nil {
		return nil, nil, err
	}
	raw = w.in[i:end]
	if !esc {
		return raw, raw[1 : len(raw)-1], nil
	}
	if w.str, _, err = unquote(w.str[:0], raw, 0); err != nil {
		return nil, nil, err
	}
	return raw, w.str, nil
}

// maskScalar writes the masked form of the scalar s (raw is how it was written). A value
// already in the form the action gives is kept, so that masking twice masks once.
func (w *walker) maskScalar(raw, s []byte, act Action, rule int) error {
	var masked []byte
	switch {
	case act == Partial && raw[0] == '"' && isPartial(s):
	case act == Pseudonymise && raw[0] == '"' && (isToken(s) || w.tok == nil && string(s) == Dropped):
	case act == Partial:
		det, known := w.p.d.classify(s)
		w.repl = partial(w.repl[:0], det, known, s)
		masked = w.repl
	default:
		w.repl = append(w.repl[:0], w.token(s, w.p.d.classify)...)
		masked = w.repl
	}
	if masked == nil {
		w.out = append(w.out, raw...)
		return nil
	}
	w.counts[rule]++
	return w.emit(masked)
}

// token returns the token of the datum s, normalised as its kind says; "[redacted]" without a
// Tokenizer.
func (w *walker) token(s []byte, kind func([]byte) (Detector, bool)) string {
	if w.tok == nil {
		return Dropped
	}
	det, known := kind(s)
	if !known {
		return w.tok.Token(s)
	}
	w.norm = w.p.d.normalize(w.norm[:0], det, s)
	return w.tok.Token(w.norm)
}

// detectString writes the string s (raw as written) with what the detectors find in it masked.
// Masking a span can make a datum of what is left (a word boundary appears where a span ends),
// so the detectors look again until they find nothing, and masking twice masks once; a string
// that still yields something after maxRounds becomes "[redacted]" whole.
func (w *walker) detectString(raw, s []byte) error {
	if w.isClean(s) {
		w.out = append(w.out, raw...)
		return nil
	}
	w.spans = w.p.d.find(s, &w.p.det, w.spans[:0])
	if len(w.spans) == 0 {
		w.remember(s)
		w.out = append(w.out, raw...)
		return nil
	}
	cur, next := &w.repl, &w.repl2
	*cur = w.replaceSpans((*cur)[:0], s, w.spans)
	for round := 1; ; round++ {
		w.spans = w.p.d.find(*cur, &w.p.det, w.spans[:0])
		if len(w.spans) == 0 {
			break
		}
		if round == maxRounds {
			w.counts[w.p.det[w.spans[0].det].rule]++
			*cur = append((*cur)[:0], Dropped...)
			break
		}
		*next = w.replaceSpans((*next)[:0], *cur, w.spans)
		cur, next = next, cur
	}
	return w.emit(*cur)
}

// maxRounds bounds how often the detectors look again at a string they masked.
const maxRounds = 4

// detectNumber writes a number, masked as a string when it is, as a whole, a datum a detector
// looks for (a card or account number written as a JSON number).
func (w *walker) detectNumber(raw []byte) error {
	if len(raw) < 8 || redact.CountDigits(raw) != len(raw) {
		w.out = append(w.out, raw...)
		return nil
	}
	w.spans = w.p.d.find(raw, &w.p.det, w.spans[:0])
	if len(w.spans) != 1 || w.spans[0].lo != 0 || w.spans[0].hi != len(raw) {
		w.out = append(w.out, raw...)
		return nil
	}
	w.repl = w.replaceSpans(w.repl[:0], raw, w.spans)
	return w.emit(w.repl)
}

// detectName returns the token that replaces a member name in which a detector finds a datum,
// or reports that the member must be dropped (the detector's rule drops, or there is no
// Tokenizer); "" and false for a name to keep.
func (w *walker) detectName(name []byte) (string, bool) {
	if w.isClean(name) || isToken(name) {
		return "", false
	}
	w.spans = w.p.d.find(name, &w.p.det, w.spans[:0])
	if len(w.spans) == 0 {
		w.remember(name)
		return "", false
	}
	da := w.p.det[w.spans[0].det]
	w.changed = true
	if da.act == Drop || w.tok == nil {
		w.counts[da.rule]++
		return "", true
	}
	w.counts[da.rule]++
	return w.tok.Token(name), false
}

// replaceSpans appends s to dst with each span masked by its detector's action.
func (w *walker) replaceSpans(dst, s []byte, spans []span) []byte {
	for i := 1; i < len(spans); i++ { // a few spans: insertion sort
		for j := i; j > 0 && spans[j].lo < spans[j-1].lo; j-- {
			spans[j], spans[j-1] = spans[j-1], spans[j]
		}
	}
	at := 0
	for _, sp := range spans {
		dst = append(dst, s[at:sp.lo]...)
		da := w.p.det[sp.det]
		m := s[sp.lo:sp.hi]
		switch da.act {
		case Drop:
			dst = append(dst, Dropped...)
		case Partial:
			dst = partial(dst, sp.det, true, m)
		default:
			dst = append(dst, w.token(m, func([]byte) (Detector, bool) { return sp.det, true })...)
		}
		w.counts[da.rule]++
		at = sp.hi
	}
	return append(dst, s[at:]...)
}

// members walks the object at in[i], copying its names and handing each value to val.
func (w *walker) members(i int, val func(name []byte, i int) (int, error)) (int, error) {
	if err := w.enter(); err != nil {
		return 0, err
	}
	defer w.leave()
	in := w.in
	w.out = append(w.out, '{')
	i = skipWS(in, i+1)
	if i < len(in) && in[i] == '}' {
		w.out = append(w.out, '}')
		return i + 1, nil
	}
	for first := true; ; first = false {
		if i >= len(in) || in[i] != '"' {
			return 0, ErrInvalid
		}
		nameEnd, esc, err := scanString(in, i)
		if err != nil {
			return 0, err
		}
		rawName := in[i:nameEnd]
		name := rawName[1 : len(rawName)-1]
		if esc { // w.name is free: a name is used before the walk goes deeper
			if w.name, _, err = unquote(w.name[:0], rawName, 0); err != nil {
				return 0, err
			}
			name = w.name
		}
		if !first {
			w.out = append(w.out, ',')
		}
		w.out = append(append(w.out, rawName...), ':')
		i = skipWS(in, nameEnd)
		if i >= len(in) || in[i] != ':' {
			return 0, ErrInvalid
		}
		if i = skipWS(in, i+1); i >= len(in) {
			return 0, ErrInvalid
		}
		if i, err = val(name, i); err != nil {
			return 0, err
		}
		i = skipWS(in, i)
		if i >= len(in) {
			return 0, ErrInvalid
		}
		switch in[i] {
		case ',':
			i = skipWS(in, i+1)
		case '}':
			w.out = append(w.out, '}')
			return i + 1, nil
		default:
			return 0, ErrInvalid
		}
	}
}

// elements walks the array at in[i], handing each element to val.
func (w *walker) elements(i int, val func(i int) (int, error)) (int, error) {
	if err := w.enter(); err != nil {
		return 0, err
	}
	defer w.leave()
	in := w.in
	w.out = append(w.out, '[')
	i = skipWS(in, i+1)
	if i < len(in) && in[i] == ']' {
		w.out = append(w.out, ']')
		return i + 1, nil
	}
	for first := true; ; first = false {
		if !first {
			w.out = append(w.out, ',')
		}
		if i >= len(in) {
			return 0, ErrInvalid
		}
		var err error
		if i, err = val(i); err != nil {
			return 0, err
		}
		i = skipWS(in, i)
		if i >= len(in) {
			return 0, ErrInvalid
		}
		switch in[i] {
		case ',':
			i = skipWS(in, i+1)
		case ']':
			w.out = append(w.out, ']')
			return i + 1, nil
		default:
			return 0, ErrInvalid
		}
	}
}

// copyValue copies the value at in[i] as it is written, once it is validated.
func (w *walker) copyValue(i int) (int, error) {
	end, err := scanValue(w.in, i, w.depth, w.maxDepth)
	if err != nil {
		return 0, err
	}
	w.out = append(w.out, w.in[i:end]...)
	return end, nil
}

func (w *walker) enter() error {
	if w.depth++; w.depth > w.maxDepth {
		return fmt.Errorf("%w: more than %d levels", ErrTooDeep, w.maxDepth)
	}
	return nil
}

func (w *walker) leave() { w.depth-- }

// bound fails when the masked result has grown past the limit (tokens are longer than most of
// what they replace).
func (w *walker) bound() error {
	if len(w.out) > w.maxBytes {
		return fmt.Errorf("%w: the masked result passes %d bytes", ErrTooLarge, w.maxBytes)
	}
	return nil
}

// emit writes a masked value as a JSON string.
func (w *walker) emit(s []byte) error {
	w.out = appendQuoted(w.out, s)
	w.changed = true
	return w.bound()
}
