package contain

// Shared reports whether the guard's counters are shared between instances (a Failover over
// Redis), and, when they are, whether the shared backend is down so that this instance counts
// alone at the failover's fraction.
func (g *Guard) Shared() (shared, degraded bool) {
	f, ok := g.b.(*Failover)
	if !ok {
		return false, false
	}
	return true, f.Degraded()
}
