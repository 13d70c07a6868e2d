package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/mcp"
	"github.com/mcpguard/mcpguard/internal/mcpguard"
	"github.com/mcpguard/mcpguard/internal/policy"
	"github.com/mcpguard/mcpguard/internal/toolschema"
	"github.com/mcpguard/mcpguard/internal/upstream"
)

// listKind is one of the four aggregated lists.
type listKind struct {
	method     string      // tools/list …
	key        string      // the result member holding the items
	named      bool        // items carry a "name" that is namespaced
	cap        string      // the server capability that announces the list
	policyKind policy.Kind // what the policy governs the items as
	ext        string      // the extension, under capabilities.extensions, that defines the list
}

var (
	kindTools     = listKind{mcp.MethodToolsList, "tools", true, "tools", policy.KindTool, ""}
	kindPrompts   = listKind{mcp.MethodPromptsList, "prompts", true, "prompts", policy.KindPrompt, ""}
	kindResources = listKind{mcp.MethodResourcesList, "resources", false, "resources", policy.KindResource, ""}
	kindTemplates = listKind{mcp.MethodResourcesTemplatesList, "resourceTemplates", false, "resources", policy.KindResource, ""}
	// Skills are addressed by the URI of their SKILL.md and governed as resources by that URI.
	kindSkills = listKind{mcp.MethodSkillsList, "skills", false, "extensions", policy.KindResource, mcp.ExtensionSkills}
)

// Bounds on what one upstream list may contribute.
const (
	maxListPages = 100
	maxListItems = 100000
)

// catalog remembers, per upstream, the names and URIs it served on its last listing, so that
// calls can be routed to the upstream that serves them. It never answers a list from memory:
// every list request is fresh.
type catalog struct {
	g  *Gateway
	mu sync.Mutex
	// names[kind][upstream] = set of the upstream's own names (tools, prompts) or URIs (resources)
	names     map[string]map[*upstream.Upstream]map[string]bool
	read      map[string]map[*upstream.Upstream]time.Time // when each list was last read
	templates map[*upstream.Upstream][]*regexp.Regexp
	bindings  *mcp.BindingCache // exposed tool name → x-mcp-header bindings
	// The definitions calls are checked against: per upstream, each tool's raw inputSchema
	// and each prompt's argument names, as last listed.
	inputs   map[*upstream.Upstream]map[string][]byte
	prompts  map[*upstream.Upstream]map[string][]string
	compiled map[[sha256.Size]byte]*compiledSchema // inputSchema digest → compiled once
	// refresh serializes the re-reading of one upstream's lists by calls that miss a name.
	refresh map[*upstream.Upstream]*sync.Mutex
	// last holds, per upstream and kind of list, the last list read in one page and what was
	// read from it; a list whose bytes are the same is not read again (fetchList).
	last map[lastKey]*lastList
}

type lastKey struct {
	up   *upstream.Upstream
	kind string
}

// lastList is a one-page list as the upstream sent it, and its items, ttl and scope.
type lastList struct {
	result []byte
	items  []listItem
	ttl    int64
	scope  string
}

// compiledSchema is an inputSchema compiled once per definition; err says why it is unusable.
type compiledSchema struct {
	s   *toolschema.Schema
	err error
}

// maxCompiledSchemas bounds the compiled-schema cache; past it the cache starts over.
const maxCompiledSchemas = 10000

// listFreshFor is how long a list read from an upstream answers "is this name served?" on its
// own: a name missing from a list older than this makes the gateway read the list again (once,
// for all the calls waiting), so a tool the upstream added without notifying is reachable within
// a second, and a flood of unknown names costs the upstream at most one listing a second.
const listFreshFor = time.Second

func newCatalog(g *Gateway) *catalog {
	c := &catalog{
		g:         g,
		names:     map[string]map[*upstream.Upstream]map[string]bool{},
		read:      map[string]map[*upstream.Upstream]time.Time{},
		templates: map[*upstream.Upstream][]*regexp.Regexp{},
		bindings:  mcp.NewBindingCache(maxListItems),
		inputs:    map[*upstream.Upstream]map[string][]byte{},
		prompts:   map[*upstream.Upstream]map[string][]string{},
		compiled:  map[[sha256.Size]byte]*compiledSchema{},
		refresh:   map[*upstream.Upstream]*sync.Mutex{},
		last:      map[lastKey]*lastList{},
	}
	for _, up := range g.ups {
		c.refresh[up] = &sync.Mutex{}
	}
	return c
}

// lookup reports whether up served name (a tool or prompt name, or a resource URI) on its last
// listing of kind, and whether that listing is recent enough to trust a miss.
func (c *catalog) lookup(kind listKind, up *upstream.Upstream, name string, now time.Time) (served, fresh bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, listed := c.read[kind.key][up]
	return c.names[kind.key][up][name], listed && now.Sub(at) < listFreshFor
}

// inputSchema returns the compiled inputSchema of up's tool name, compiling each distinct
// definition once.
func (c *catalog) inputSchema(up *upstream.Upstream, name string) (*toolschema.Schema, error) {
	c.mu.Lock()
	raw := c.inputs[up][name]
	c.mu.Unlock()
	sum := sha256.Sum256(raw)
	c.mu.Lock()
	cs := c.compiled[sum]
	c.mu.Unlock()
	if cs == nil {
		cs = &compiledSchema{}
		cs.s, cs.err = toolschema.Compile(raw)
		c.mu.Lock()
		if len(c.compiled) >= maxCompiledSchemas {
			clear(c.compiled)
		}
		c.compiled[sum] = cs
		c.mu.Unlock()
	}
	return cs.s, cs.err
}

// promptArguments returns the argument names up's prompt declares.
func (c *catalog) promptArguments(up *upstream.Upstream, name string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.prompts[up][name]
}

func (c *catalog) invalidate(up *upstream.Upstream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.names {
		delete(m, up)
	}
	for _, m := range c.read {
		delete(m, up)
	}
	delete(c.templates, up)
	for k := range c.last {
		if k.up == up {
			delete(c.last, k) // the next read builds the catalog's maps again
		}
	}
}

// fetched is one upstream's contribution to a list.
type fetched struct {
	up    *upstream.Upstream
	items []listItem
	ttl   int64 // -1 when absent
	// streamed: the upstream answered a page on an SSE stream.
	streamed bool
	scope    string
	err      error
}

// listItem is one item of an upstream's list, read once: its raw JSON, the raw value of its
// key member (name, uri or uriTemplate) and, for a tool, its raw inputSchema.
type listItem struct {
	raw, key, schema []byte
}

// keyMember is the member that names an item of a kind of list.
func (k listKind) keyMember() string {
	switch {
	case k.named:
		return "name"
	case k == kindTemplates:
		return "uriTemplate"
	}
	return "uri"
}

// list aggregates one kind of list over every upstream, namespacing names and dropping clashes.
// streamed reports that an upstream answered on an SSE stream.
func (g *Gateway) list(ctx context.Context, c *caller, kind listKind) (result []byte, streamed bool, err error) {
	res := make([]fetched, len(g.ups))
	var wg sync.WaitGroup
	for i, up := range g.ups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = g.fetchList(ctx, c, up, kind)
		}()
	}
	wg.Wait()

	size := 64
	for _, f := range res {
		for _, item := range f.items {
			size += len(item.raw) + 1
		}
	}
	out := make([]byte, 0, size)
	out = append(out, '{', '"')
	out = append(out, kind.key...)
	out = append(out, `":[`...)
	seen := map[string]string{}
	var ttl int64 = -1
	scope := ""
	failures := 0
	var lastErr error
	count := 0
	for _, f := range res {
		if f.err != nil {
			failures++
			lastErr = f.err
			if !errors.Is(f.err, errNotOffered) {
				g.logger.Warn("listing upstream failed; serving the others", "upstream", f.up.Name(), "method", kind.method, "err", f.err)
			}
			continue
		}
		streamed = streamed || f.streamed
		if f.ttl >= 0 && (ttl < 0 || f.ttl < ttl) {
			ttl = f.ttl
		}
		if f.scope == "private" || (f.scope != "" && scope == "") {
			scope = f.scope
		}
		for _, it := range f.items {
			item := it.raw
			key, _ := jsonrpc.String(it.key)
			if kind.named {
				exposed := g.expose(f.up, key)
				if q := jsonrpc.Quote(exposed); !bytes.Equal(it.key, q) {
					item = jsonrpc.SetMember(item, "name", q)
				}
				key = exposed
			}
			if other, dup := seen[key]; dup {
				g.logger.Error("name clash between upstreams; serving the first", "kind", kind.key, "name", key, "served_by", other, "hidden_from", f.up.Name())
				continue
			}
			seen[key] = f.up.Name()
			if !g.visible(c, kind.policyKind, key) {
				continue // a caller never sees what it cannot use
			}
			if count > 0 {
				out = append(out, ',')
			}
			out = append(out, item...)
			count++
		}
	}
	if failures == len(res) && failures > 0 && !errors.Is(lastErr, errNotOffered) {
		return nil, false, lastErr
	}
	out = append(out, ']')
	if c.era == mcpguard.EraModern {
		if ttl < 0 {
			ttl = 0
		}
		if scope == "" {
			scope = "public"
		}
		if g.policy != nil {
			scope = "private" // filtered for this caller: never to be shared with another
		}
		// The members the object lacks, appended rather than set: SetMember would copy the
		// whole list for each.
		out = strconv.AppendInt(append(out, `,"ttlMs":`...), ttl, 10)
		out = jsonrpc.AppendQuote(append(out, `,"cacheScope":`...), scope)
		out = jsonrpc.AppendQuote(append(out, `,"resultType":`...), mcp.ResultTypeComplete)
	}
	return append(out, '}'), streamed, nil
}

// offers reports whether an upstream's capabilities announce a kind of list.
func offers(caps []byte, kind listKind) bool {
	v, ok := jsonrpc.Lookup(caps, kind.cap)
	if ok && kind.ext != "" {
		_, ok = jsonrpc.Lookup(v, kind.ext)
	}
	return ok
}

// errNotOffered marks an upstream that does not offer a kind of list at all.
var errNotOffered = errors.New("not offered")

// fetchList reads every page of one upstream's list and records what it serves.
func (g *Gateway) fetchList(ctx context.Context, c *caller, up *upstream.Upstream, kind listKind) fetched {
	f := fetched{up: up, ttl: -1}
	inf, err := up.Info(ctx)
	if err != nil {
		f.err = err
		return f
	}
	if !offers(inf.Capabilities, kind) {
		f.err = errNotOffered
		return f
	}
	var cursor []byte
	known := map[string]bool{}
	inputs := map[string][]byte{}
	prompts := map[string][]string{}
	var tmpl []*regexp.Regexp
	var last *lastList // the list, when it comes in one page
	for page := 0; page < maxListPages; page++ {
		params := []byte(`{}`)
		if cursor != nil {
			params = jsonrpc.SetMember(params, "cursor", cursor)
		}
		resp, err := up.Call(ctx, &upstream.Request{Method: kind.method, Params: g.upstreamParams(c, inf, params)}, nil)
		if err != nil {
			f.err = err
			return f
		}
		if resp.Error != nil {
			f.err = fmt.Errorf("%s: %d %s", kind.method, resp.Error.Code, resp.Error.Message)
			return f
		}
		f.streamed = f.streamed || resp.Streamed
		if page == 0 && g.sameList(up, kind, resp.Result, &f) {
			return g.screened(ctx, c, up, kind, f)
		}
		// One pass over the result, which is mostly the items: ttlMs, cacheScope, the items,
		// nextCursor.
		var top [4][]byte
		_ = jsonrpc.Pick(resp.Result, []string{"ttlMs", "cacheScope", kind.key, "nextCursor"}, top[:])
		if t := top[0]; t != nil {
			var n int64
			if _, err := fmt.Sscan(string(t), &n); err == nil && (f.ttl < 0 || n < f.ttl) {
				f.ttl = n
			}
		}
		if s := top[1]; s != nil {
			if v, _ := jsonrpc.String(s); v == "private" || f.scope == "" {
				f.scope = v
			}
		}
		items := top[2]
		names := []string{kind.keyMember(), "inputSchema"}
		if kind != kindTools {
			names = names[:1]
		}
		var vals [2][]byte
		_ = jsonrpc.Elements(items, func(raw []byte) error {
			if len(f.items) >= maxListItems {
				return errors.New("too many")
			}
			vals = [2][]byte{}
			_ = jsonrpc.Pick(raw, names, vals[:len(names)])
			item := listItem{raw: raw, key: vals[0], schema: vals[1]}
			f.items = append(f.items, item)
			key, _ := jsonrpc.String(item.key)
			switch kind {
			case kindTemplates:
				if re := templateRegexp(key); re != nil {
					tmpl = append(tmpl, re)
				}
			case kindTools:
				known[key] = true
				inputs[key] = item.schema
				// Learnt when the list is read, not each time it is served: a list the upstream
				// sends again byte for byte (sameList) has its bindings learnt already.
				_, _ = g.cat.bindings.Learn(g.expose(up, key), item.schema) // an invalid schema's tool gets no bindings
			case kindPrompts:
				known[key] = true
				prompts[key] = promptArgumentNames(raw)
			default:
				known[key] = true
			}
			return nil
		})
		next := top[3]
		if next == nil || string(next) == "null" {
			if page == 0 {
				last = &lastList{result: resp.Result, items: f.items, ttl: f.ttl, scope: f.scope}
			}
			break
		}
		cursor = next
	}
	g.cat.mu.Lock()
	key := lastKey{up, kind.key}
	if last != nil {
		g.cat.last[key] = last
	} else {
		delete(g.cat.last, key) // what the catalog holds now is not that list's
	}
	switch kind {
	case kindTemplates:
		g.cat.templates[up] = tmpl
	default:
		m := g.cat.names[kind.key]
		if m == nil {
			m = map[*upstream.Upstream]map[string]bool{}
			g.cat.names[kind.key] = m
		}
		m[up] = known
		at := g.cat.read[kind.key]
		if at == nil {
			at = map[*upstream.Upstream]time.Time{}
			g.cat.read[kind.key] = at
		}
		at[up] = g.now()
		switch kind {
		case kindTools:
			g.cat.inputs[up] = inputs
		case kindPrompts:
			g.cat.prompts[up] = prompts
		}
	}
	g.cat.mu.Unlock()
	return g.screened(ctx, c, up, kind, f)
}

// sameList fills f from the last list of up's kind when result is byte for byte that list,
// which the catalog then holds already, and marks it read now.
func (g *Gateway) sameList(up *upstream.Upstream, kind listKind, result []byte, f *fetched) bool {
	g.cat.mu.Lock()
	defer g.cat.mu.Unlock()
	last := g.cat.last[lastKey{up, kind.key}]
	if last == nil || !bytes.Equal(last.result, result) {
		return false
	}
	f.items, f.ttl, f.scope = last.items, last.ttl, last.scope
	if at := g.cat.read[kind.key]; at != nil {
		at[up] = g.now()
	}
	return true
}

// screened drops from a list of tools those whose definition is not approved (tool pins), from
// a copy: the items may be the last list's, which other calls read.
func (g *Gateway) screened(ctx context.Context, c *caller, up *upstream.Upstream, kind listKind, f fetched) fetched {
	if kind == kindTools && g.pins != nil {
		f.items = g.screenPins(ctx, c, up, slices.Clone(f.items))
	}
	return f
}

// expose is the name clients see for an upstream's tool or prompt.
func (g *Gateway) expose(up *upstream.Upstream, name string) string {
	if up.Prefix() == "" {
		return name
	}
	return up.Prefix() + g.sep + name
}

// routeName finds the upstream serving an exposed tool or prompt name and its own name there.
// A name is served only if it is, byte for byte, a name in that upstream's current list: a case
// variant, a look-alike or a name with a trailing space reaches no upstream.
func (g *Gateway) routeName(ctx context.Context, c *caller, kind listKind, exposed string) (*upstream.Upstream, string, error) {
	if prefix, rest, ok := strings.Cut(exposed, g.sep); ok {
		if up := g.byPrefix[prefix]; up != nil && g.serves(ctx, c, up, kind, rest) {
			return up, rest, nil
		}
	}
	for _, up := range g.bare {
		if g.serves(ctx, c, up, kind, exposed) {
			return up, exposed, nil
		}
	}
	return nil, "", mcpguard.ErrUnknownTarget
}

// serves reports whether up lists name among its kind; see listFreshFor for when a miss makes
// the gateway read the list again.
func (g *Gateway) serves(ctx context.Context, c *caller, up *upstream.Upstream, kind listKind, name string) bool {
	if served, fresh := g.cat.lookup(kind, up, name, g.now()); served || fresh {
		return served
	}
	mu := g.cat.refresh[up]
	mu.Lock()
	defer mu.Unlock()
	if served, fresh := g.cat.lookup(kind, up, name, g.now()); served || fresh {
		return served // another call read the list meanwhile
	}
	g.fetchList(ctx, c, up, kind)
	served, _ := g.cat.lookup(kind, up, name, g.now())
	return served
}

// routeURI finds the upstream serving a resource URI: by its listed resources, then by its
// resource templates, then — with a single upstream — that one.
func (g *Gateway) routeURI(ctx context.Context, c *caller, uri string) (*upstream.Upstream, error) {
	if len(g.ups) == 1 {
		return g.ups[0], nil
	}
	for attempt := 0; attempt < 2; attempt++ {
		g.cat.mu.Lock()
		for _, up := range g.ups {
			if g.cat.names[kindResources.key][up][uri] || g.cat.names[kindSkills.key][up][uri] {
				g.cat.mu.Unlock()
				return up, nil
			}
		}
		for _, up := range g.ups {
			for _, re := range g.cat.templates[up] {
				if re.MatchString(uri) {
					g.cat.mu.Unlock()
					return up, nil
				}
			}
		}
		g.cat.mu.Unlock()
		if attempt == 0 {
			for _, up := range g.ups {
				g.fetchList(ctx, c, up, kindResources)
				g.fetchList(ctx, c, up, kindTemplates)
				g.fetchList(ctx, c, up, kindSkills)
			}
		}
	}
	return nil, mcpguard.ErrUnknownTarget
}

// toolBindings returns the x-mcp-header bindings of an exposed tool, listing tools if needed.
func (g *Gateway) toolBindings(ctx context.Context, c *caller, exposed string) []mcp.ParamBinding {
	if b, ok := g.cat.bindings.Get(exposed); ok {
		return b
	}
	if _, _, err := g.list(ctx, c, kindTools); err != nil {
		return nil
	}
	b, _ := g.cat.bindings.Get(exposed)
	return b
}

// templateRegexp turns an RFC 6570 URI template into a matcher: each expression matches any run
// of characters, literal text matches itself.
func templateRegexp(t string) *regexp.Regexp {
	if t == "" || len(t) > 2048 {
		return nil
	}
	var b strings.Builder
	b.WriteString("^")
	for len(t) > 0 {
		open := strings.IndexByte(t, '{')
		if open < 0 {
			b.WriteString(regexp.QuoteMeta(t))
			break
		}
		b.WriteString(regexp.QuoteMeta(t[:open]))
		end := strings.IndexByte(t[open:], '}')
		if end < 0 {
			return nil
		}
		expr := t[open+1 : open+end]
		switch {
		case strings.HasPrefix(expr, "?"), strings.HasPrefix(expr, "&"):
			b.WriteString(`(?:[?&].*)?`)
		case strings.HasPrefix(expr, "+"), strings.HasPrefix(expr, "#"):
			b.WriteString(`.*`)
		default:
			b.WriteString(`[^/]*`)
		}
		t = t[open+end+1:]
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil
	}
	return re
}

// promptArgumentNames reads the names of a prompt definition's arguments.
func promptArgumentNames(item []byte) []string {
	args, _ := jsonrpc.Lookup(item, "arguments")
	var out []string
	_ = jsonrpc.Elements(args, func(a []byte) error {
		raw, _ := jsonrpc.Lookup(a, "name")
		if n, ok := jsonrpc.String(raw); ok {
			out = append(out, n)
		}
		return nil
	})
	return out
}
