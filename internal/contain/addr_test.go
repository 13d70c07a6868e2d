package contain

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func mustNetworks(t testing.TB, list ...string) Networks {
	t.Helper()
	n, err := ParseNetworks(list)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestClientAddr(t *testing.T) {
	trusted := mustNetworks(t, "10.0.0.0/8", "2001:db8::/32")
	for _, c := range []struct {
		name, remote string
		header       http.Header
		want         string
	}{
		{"no proxy", "203.0.113.7:5000", nil, "203.0.113.7"},
		{"spoofed header from an untrusted peer", "203.0.113.7:5000",
			http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "203.0.113.7"},
		{"spoofed Forwarded from an untrusted peer", "203.0.113.7:5000",
			http.Header{"Forwarded": {"for=198.51.100.1"}}, "203.0.113.7"},
		{"one trusted proxy", "10.0.0.5:443",
			http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1"},
		{"client-supplied prefix before the real client", "10.0.0.5:443",
			http.Header{"X-Forwarded-For": {"1.2.3.4, 198.51.100.1"}}, "198.51.100.1"},
		{"two trusted proxies", "10.0.0.5:443",
			http.Header{"X-Forwarded-For": {"198.51.100.1, 10.0.0.9"}}, "198.51.100.1"},
		{"header lines are one list", "10.0.0.5:443",
			http.Header{"X-Forwarded-For": {"1.2.3.4", "198.51.100.1"}}, "198.51.100.1"},
		{"garbage hop ends the walk at the proxy", "10.0.0.5:443",
			http.Header{"X-Forwarded-For": {"198.51.100.1, nonsense"}}, "10.0.0.5"},
		{"trusted peer without a header", "10.0.0.5:443", nil, "10.0.0.5"},
		{"Forwarded with port and quotes", "10.0.0.5:443",
			http.Header{"Forwarded": {`for="198.51.100.1:4711";proto=https`}}, "198.51.100.1"},
		{"Forwarded IPv6", "[2001:db8::1]:443",
			http.Header{"Forwarded": {`For="[2001:db8:cafe::17]:4711"`}}, "2001:db8:cafe::17"},
		{"Forwarded wins over X-Forwarded-For", "10.0.0.5:443",
			http.Header{"Forwarded": {"for=198.51.100.2"}, "X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.2"},
		{"Forwarded obfuscated node", "10.0.0.5:443",
			http.Header{"Forwarded": {"for=_hidden"}}, "10.0.0.5"},
		{"mapped IPv4 is IPv4", "[::ffff:203.0.113.7]:5000", nil, "203.0.113.7"},
		{"zone in a hop is refused", "10.0.0.5:443",
			http.Header{"X-Forwarded-For": {"fe80::1%eth0"}}, "10.0.0.5"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: c.remote, Header: c.header}
			if r.Header == nil {
				r.Header = http.Header{}
			}
			if got := ClientAddr(r, trusted); got.String() != c.want {
				t.Errorf("ClientAddr = %s, want %s", got, c.want)
			}
		})
	}
}

// TestRotatingForwardedForChangesNothing: from an untrusted peer, every spoofed header value
// yields the same client, so a limit keyed on it cannot be evaded.
func TestRotatingForwardedForChangesNothing(t *testing.T) {
	trusted := mustNetworks(t, "10.0.0.0/8")
	for i := range 200 {
		r := &http.Request{RemoteAddr: "203.0.113.7:1", Header: http.Header{
			"X-Forwarded-For": {netip.AddrFrom4([4]byte{198, 51, byte(i), 1}).String()},
			"Forwarded":       {"for=10.1.2." + string(rune('0'+i%10))},
		}}
		if got := ClientAddr(r, trusted); got != netip.MustParseAddr("203.0.113.7") {
			t.Fatalf("spoofed header %d moved the client to %s", i, got)
		}
	}
}

func TestParseNetworks(t *testing.T) {
	n := mustNetworks(t, "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::ffff:100.64.0.0/106", "2001:db8::1")
	for addr, want := range map[string]bool{
		"10.1.2.3": true, "::ffff:10.1.2.3": true, "172.31.255.255": true, "172.32.0.0": false,
		"192.168.1.1": true, "8.8.8.8": false, "100.64.0.1": true, "2001:db8::1": true, "2001:db8::2": false,
	} {
		if got := n.Contains(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", addr, got, want)
		}
	}
	for _, bad := range []string{"10.1.2.3/8", "10.0.0.0/33", "example.com", "fe80::1%eth0", ""} {
		if _, err := ParseNetworks([]string{bad}); err == nil {
			t.Errorf("ParseNetworks(%q) accepted", bad)
		} else if !strings.Contains(err.Error(), "network") {
			t.Errorf("ParseNetworks(%q) error %q does not name the network", bad, err)
		}
	}
}

func TestAdmits(t *testing.T) {
	private := mustNetworks(t, "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
	denied := mustNetworks(t, "10.66.0.0/16")
	for _, c := range []struct {
		addr string
		want bool
	}{{"10.1.1.1", true}, {"10.66.1.1", false}, {"8.8.8.8", false}, {"", false}} {
		var a netip.Addr
		if c.addr != "" {
			a = netip.MustParseAddr(c.addr)
		}
		if got := Admits(private, denied, a); got != c.want {
			t.Errorf("Admits(%q) = %v, want %v", c.addr, got, c.want)
		}
	}
	if !Admits(nil, denied, netip.Addr{}) {
		t.Error("an unknown address was refused where no allowed list is set")
	}
}

func FuzzClientAddr(f *testing.F) {
	f.Add("198.51.100.1, 10.0.0.9", `for="[2001:db8::1]:80";proto=https, for=10.0.0.1`)
	f.Add("", "for=_hidden")
	f.Add("1.2.3.4,,,", `for="`)
	trusted := mustNetworks(f, "10.0.0.0/8", "2001:db8::/32")
	f.Fuzz(func(t *testing.T, xff, fwd string) {
		h := http.Header{}
		if xff != "" {
			h.Set("X-Forwarded-For", xff)
		}
		if fwd != "" {
			h.Set("Forwarded", fwd)
		}
		got := ClientAddr(&http.Request{RemoteAddr: "10.0.0.5:443", Header: h}, trusted)
		if !got.IsValid() || got.Zone() != "" || got.Is4In6() {
			t.Fatalf("ClientAddr = %v: want a valid, unzoned, unmapped address", got)
		}
		// From an untrusted peer the headers never matter.
		if got := ClientAddr(&http.Request{RemoteAddr: "203.0.113.7:1", Header: h}, trusted); got != netip.MustParseAddr("203.0.113.7") {
			t.Fatalf("untrusted peer's headers moved the client to %v", got)
		}
	})
}
