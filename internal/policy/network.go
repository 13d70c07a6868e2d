package policy

import (
	"fmt"
	"net/netip"
	"strings"
)

// A role's allowed_networks and denied_networks decide whether the role applies to a call,
// by the call's source address. A role that does not apply grants nothing for the call — its
// permissions are not candidates — but its deny lists still deny: moving outside a network
// must never gain a principal anything. An unknown address (stdio, where there is no peer)
// applies to no role with either list: fail closed.

// netVerdict is whether a role applies to a call from an address, and why not.
type netVerdict uint8

const (
	netApplies netVerdict = iota
	netUnknown            // the address is unknown and the role has networks
	netOutside            // outside every allowed network
	netDenied             // inside a denied network
)

// network says whether the role applies to a call from addr.
func (r *role) network(addr netip.Addr) netVerdict {
	if len(r.allowed) == 0 && len(r.denied) == 0 {
		return netApplies
	}
	if !addr.IsValid() {
		return netUnknown
	}
	addr = addr.Unmap().WithZone("")
	for _, pfx := range r.denied {
		if pfx.Contains(addr) {
			return netDenied
		}
	}
	if len(r.allowed) == 0 {
		return netApplies
	}
	for _, pfx := range r.allowed {
		if pfx.Contains(addr) {
			return netApplies
		}
	}
	return netOutside
}

// applying keeps in roles those that apply to a call from addr, in place, and appends the
// others to blocked.
func applying(roles []*role, addr netip.Addr, blocked []*role) (kept, out []*role) {
	n := 0
	for _, r := range roles {
		if r.network(addr) == netApplies {
			roles[n] = r
			n++
		} else {
			blocked = append(blocked, r)
		}
	}
	return roles[:n], blocked
}

// networkReasons appends, for every role in blocked that names the call, why it does not
// apply; rule is the first such role's network rule ("role:R/allowed_networks" or
// "role:R/denied_networks"), "" when none names the call.
func networkReasons(reasons []string, blocked []*role, c *Call) ([]string, string) {
	rule := ""
	for _, r := range blocked {
		if !r.names(c.Kind, c.Name) {
			continue
		}
		v := r.network(c.SourceIP)
		key := "allowed_networks"
		var why string
		switch v {
		case netUnknown:
			if len(r.allowed) == 0 {
				key = "denied_networks"
			}
			why = fmt.Sprintf("role %s does not apply: the source address is unknown (as over stdio) and the role is limited to networks (%s)", r.name, key)
		case netOutside:
			why = fmt.Sprintf("role %s does not apply: the source address %s is outside its allowed_networks %s", r.name, c.SourceIP.Unmap().WithZone(""), prefixList(r.allowed))
		case netDenied:
			key = "denied_networks"
			why = fmt.Sprintf("role %s does not apply: the source address %s is in its denied_networks %s", r.name, c.SourceIP.Unmap().WithZone(""), prefixList(r.denied))
		}
		if rule == "" {
			rule = "role:" + r.name + "/" + key
		}
		reasons = append(reasons, why)
	}
	return reasons, rule
}

func prefixList(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return "[" + strings.Join(s, " ") + "]"
}

// networks compiles a role's allowed_networks and denied_networks.
func (c *compiler) networks(r *role, rd *roleDoc, path string) {
	if rd.AllowedNetworks != nil && len(rd.AllowedNetworks) == 0 && !c.d.broken[path+".allowed_networks"] {
		c.problem(path+".allowed_networks", "an empty list allows no address; leave allowed_networks out to allow every address")
	}
	r.allowed = c.prefixes(rd.AllowedNetworks, path+".allowed_networks")
	r.denied = c.prefixes(rd.DeniedNetworks, path+".denied_networks")
	if len(r.allowed)+len(r.denied) > 0 {
		c.p.networks = true
	}
}

// prefixes reads CIDRs or single addresses, as the configuration's networks are read
// (internal/contain.ParseNetwork): a prefix with bits set past its length is refused rather
// than guessed at, and IPv4-mapped addresses and prefixes are read as IPv4.
func (c *compiler) prefixes(list []string, path string) []netip.Prefix {
	var out []netip.Prefix
	for i, s := range list {
		where := pathIndex(path, i)
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" {
				c.problem(where, "%s is not an IP address or a network in CIDR notation such as 10.0.0.0/8", quote(s))
				continue
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		pfx, err := netip.ParsePrefix(s)
		switch {
		case err != nil:
			c.problem(where, "%s is not a network in CIDR notation such as 10.0.0.0/8", quote(s))
			continue
		case pfx.Masked() != pfx:
			c.problem(where, "%s has bits set past its prefix length; write %s for the network, or the address alone", quote(s), pfx.Masked())
			continue
		case pfx.Addr().Is4In6(): // at least /96, or its bits past the length would be set
			pfx = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-96)
		}
		out = append(out, pfx)
	}
	return out
}
