package contain

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Networks is a set of address prefixes. The zero value holds none.
type Networks []netip.Prefix

// ParseNetworks reads CIDRs ("10.0.0.0/8", "2001:db8::/32") or single addresses. A prefix with
// host bits set is refused: "10.1.2.3/8" is most often a typo for "10.0.0.0/8" or
// "10.1.2.3/32", and guessing which would widen or narrow a security boundary.
func ParseNetworks(list []string) (Networks, error) {
	n := make(Networks, 0, len(list))
	for _, s := range list {
		p, err := ParseNetwork(s)
		if err != nil {
			return nil, err
		}
		n = append(n, p)
	}
	return n, nil
}

// ParseNetwork reads one CIDR or address; see ParseNetworks.
func ParseNetwork(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, &networkError{s, "not an IP address or CIDR"}
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, &networkError{s, "not a CIDR"}
	}
	if p.Masked() != p {
		return netip.Prefix{}, &networkError{s, "has host bits set (write " + p.Masked().String() + " for the network, or the address alone)"}
	}
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		if p.Bits() < 0 {
			return netip.Prefix{}, &networkError{s, "an IPv4-mapped prefix shorter than ::ffff:0:0/96"}
		}
	}
	return p, nil
}

type networkError struct{ value, why string }

func (e *networkError) Error() string { return "network " + quoteShort(e.value) + ": " + e.why }

// Contains reports whether a is in one of the networks. An IPv4-mapped IPv6 address is read as
// the IPv4 address it carries, so "::ffff:10.0.0.1" is in 10.0.0.0/8 and cannot slip past a
// denial written for IPv4.
func (n Networks) Contains(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range n {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Admits reports whether a client at a may connect, given allowed and denied networks: denied
// wins; an empty allowed list admits every address not denied. An unknown address (invalid) is
// admitted only when no allowed list is set: where networks are restricted, a caller that
// cannot be placed is outside them.
func Admits(allowed, denied Networks, a netip.Addr) bool {
	if denied.Contains(a) {
		return false
	}
	if len(allowed) == 0 {
		return true
	}
	return allowed.Contains(a)
}

// ClientAddr finds the client's address for a request. It is the TCP peer, unless the peer is
// one of the trusted proxies: then the forwarding headers the proxies added are read from the
// nearest hop outward, and the client is the first address that is not itself a trusted proxy.
// A header from a peer that is not trusted is ignored entirely, so rotating a spoofed
// X-Forwarded-For changes nothing. Forwarded (RFC 7239) is read when present, X-Forwarded-For
// otherwise; a malformed or unknown hop ends the walk at the last address known good (the
// trusted proxy that reported it).
func ClientAddr(r *http.Request, trusted Networks) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if len(trusted) == 0 || !trusted.Contains(peer) {
		return peer
	}
	hops := forwardedHops(r.Header)
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := hops[i].addr, hops[i].ok
		if !ok {
			break
		}
		client = a
		if !trusted.Contains(a) {
			break
		}
	}
	return client
}

// peerAddr is the address of a RemoteAddr ("ip:port"), unmapped; invalid when it has none.
func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

type hop struct {
	addr netip.Addr
	ok   bool
}

// maxHops bounds the forwarding chain read: a real one has a handful of proxies.
const maxHops = 32

// forwardedHops lists the client-side hops of Forwarded (the for= of each element) or, when
// there is none, of X-Forwarded-For, in order, from the original client to the nearest proxy.
// Only the last maxHops are kept: the walk reads from the nearest end.
func forwardedHops(h http.Header) []hop {
	var hops []hop
	if fw := h.Values("Forwarded"); len(fw) > 0 {
		for _, line := range fw {
			for elem := range strings.SplitSeq(line, ",") {
				hops = appendHop(hops, forwardedFor(elem))
			}
		}
		return hops
	}
	for _, line := range h.Values("X-Forwarded-For") {
		for part := range strings.SplitSeq(line, ",") {
			hops = appendHop(hops, parseHop(strings.TrimSpace(part)))
		}
	}
	return hops
}

func appendHop(hops []hop, h hop) []hop {
	if len(hops) == maxHops {
		copy(hops, hops[1:])
		hops = hops[:maxHops-1]
	}
	return append(hops, h)
}

// forwardedFor reads the for= parameter of one Forwarded element; a missing one is an unknown
// hop.
func forwardedFor(elem string) hop {
	for pair := range strings.SplitSeq(elem, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "for") {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		// An IPv6 node is written "[2001:db8::1]" or "[2001:db8::1]:4711"; IPv4 may carry a
		// port.
		if strings.HasPrefix(v, "[") {
			if end := strings.IndexByte(v, ']'); end > 0 {
				return parseHop(v[1:end])
			}
			return hop{}
		}
		if host, _, err := net.SplitHostPort(v); err == nil {
			v = host
		}
		return parseHop(v)
	}
	return hop{}
}

func parseHop(s string) hop {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		if host, _, err := net.SplitHostPort(s); err == nil {
			if a, err = netip.ParseAddr(strings.Trim(host, "[]")); err == nil && a.Zone() == "" {
				return hop{a.Unmap(), true}
			}
		}
		return hop{}
	}
	return hop{a.Unmap(), true}
}

type addrKey struct{}

// WithClientAddr records the client's address (ClientAddr) in ctx for the steps after.
func WithClientAddr(ctx context.Context, a netip.Addr) context.Context {
	return context.WithValue(ctx, addrKey{}, a)
}

// ClientAddrFrom returns the address WithClientAddr recorded.
func ClientAddrFrom(ctx context.Context) (netip.Addr, bool) {
	a, ok := ctx.Value(addrKey{}).(netip.Addr)
	return a, ok
}

// quoteShort quotes s, cut to 64 bytes, for an error message.
func quoteShort(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}
