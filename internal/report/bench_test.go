package report_test

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/report"
	"github.com/mcpguard/mcpguard/internal/store/sqlite"
	"github.com/mcpguard/mcpguard/internal/store/storetest"
)

// benchRecords is the size of the benchmark's log: a million records, or MCPGUARD_BENCH_RECORDS.
func benchRecords(b *testing.B) int {
	if s := os.Getenv("MCPGUARD_BENCH_RECORDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1000 {
			b.Fatalf("MCPGUARD_BENCH_RECORDS=%q: want a number of at least 1000", s)
		}
		return n
	}
	return 1_000_000
}

// benchRecord is record i of a month of gateway traffic: calls and their outcomes (some
// masked, some failing), orders with approvals, denials, administrative acts and alerts.
func benchRecord(i int, from time.Time, span time.Duration, n int) *audit.Record {
	at := from.Add(time.Duration(int64(span) / int64(n) * int64(i)))
	id := "r" + strconv.Itoa(i/2)
	principal := "agent-" + strconv.Itoa(i%50)
	switch {
	case i%1000 == 7:
		return &audit.Record{Time: at, Kind: audit.KindApproval, RequestID: "ap" + id, Principal: "head-" + strconv.Itoa(i%3), Tool: "finance.execute_trade_order", Decision: "allow",
			Detail: json.RawMessage(`{"requester":"` + principal + `","approver":"head-` + strconv.Itoa(i%3) + `","approver_role":"desk-head","status":"approved"}`)}
	case i%1000 == 8:
		return &audit.Record{Time: at, Kind: audit.KindAdmin, RequestID: "j" + id, Principal: "root-op", Decision: "allow",
			Detail: json.RawMessage(`{"act":"api_key.create","target":{"key_id":"k` + id + `"},"result":"ok","via":"cli"}`)}
	case i%500 == 9:
		return &audit.Record{Time: at, Kind: audit.KindAlert, RequestID: "a" + id, Principal: principal, Reasons: []string{"denials spiked"},
			Detail: json.RawMessage(`{"action":"alert","target":"` + principal + `","signal":{"name":"denial_rate"}}`)}
	case i%50 == 11:
		return &audit.Record{Time: at, Kind: audit.KindPolicyDenial, RequestID: id, Principal: principal, Tool: "finance.transfer_funds", Decision: "deny",
			Rule: "deny-" + strconv.Itoa(i%7), Reasons: []string{"not permitted"}}
	case i%2 == 0:
		tool := "finance.get_client_portfolio"
		if i%100 == 0 {
			tool = "finance.execute_trade_order"
		}
		return &audit.Record{Time: at, Kind: audit.KindToolCall, RequestID: id, Principal: principal, Roles: []string{"analyst"}, AuthMethod: "api_key",
			Tool: tool, Decision: "allow", Rule: "read", Arguments: json.RawMessage(`{"client_id":"tok_` + strconv.Itoa(i%9973) + `","period":"1y"}`)}
	default:
		o := &audit.Outcome{Status: "ok", ResultDigest: "sha256:0000000000000000000000000000000000000000000000000000000000000000"}
		if i%10 == 1 {
			o.Masked = map[string]int{"client-names": 3, "iban": 1}
		}
		if i%97 == 0 {
			o.Status, o.Error = "tool_error", "upstream said no"
		}
		return &audit.Record{Time: at, Kind: audit.KindOutcome, RequestID: id, Principal: principal, Tool: "finance.get_client_portfolio",
			Outcome: o, DurationMicros: 1200, ResponseBytes: 2048}
	}
}

// BenchmarkReportMillion builds the report over a log of a million records (filled through
// the audit log's group commit by 256 concurrent writers), verifying it first, and renders it
// as HTML and JSON: the target is 30 s.
//
//	go test -run '^$' -bench ReportMillion -benchtime 1x ./internal/report/
func BenchmarkReportMillion(b *testing.B) {
	n := benchRecords(b)
	dir := b.TempDir()
	key, _ := newKey(b, "bench-log")
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dir+"/audit.db", nil)
	if err != nil {
		b.Fatal(err)
	}
	lg, err := audit.Open(ctx, st, &audit.Options{Signer: key.Signer, CheckpointDir: dir + "/cp"})
	if err != nil {
		b.Fatal(err)
	}
	from, span := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), 30*24*time.Hour
	fill := time.Now()
	const writers = 256
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n; i += writers {
				if _, err := lg.Append(ctx, benchRecord(i, from, span, n)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := lg.Close(); err != nil {
		b.Fatal(err)
	}
	st.Close()
	b.Logf("filled %d records in %v", n, time.Since(fill).Round(time.Millisecond))

	ro, err := sqlite.Open(ctx, dir+"/audit.db", &sqlite.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer ro.Close()
	b.ResetTimer()
	for b.Loop() {
		start, cpu := time.Now(), storetest.ProcessCPU()
		r, err := report.Build(ctx, ro, report.Options{From: from, To: from.Add(span), Signer: key.Signer, CheckpointDir: dir + "/cp"})
		if err != nil {
			b.Fatal(err)
		}
		built := time.Since(start)
		page, err := report.HTML(r, key)
		if err != nil {
			b.Fatal(err)
		}
		js, err := report.JSON(r, key)
		if err != nil {
			b.Fatal(err)
		}
		if r.Activity.Records != int64(n) || r.MiFID.OrdersTotal == 0 || r.SOX.ApprovalsTotal == 0 {
			b.Fatalf("the report covers %d of %d records, %d orders: the benchmark proves nothing", r.Activity.Records, n, r.MiFID.OrdersTotal)
		}
		b.ReportMetric(float64(r.Verification.ElapsedMillis)/1000, "verify-s")
		b.ReportMetric(built.Seconds(), "build-s")
		b.ReportMetric(time.Since(start).Seconds(), "total-s")
		// CPU time does not depend on what else the machine runs, unlike the wall times.
		b.ReportMetric((storetest.ProcessCPU() - cpu).Seconds(), "cpu-s")
		b.ReportMetric(float64(len(page))/1e6, "html-MB")
		b.Logf("%d records: verify %v, build (verify and collect) %v, total with HTML and JSON %v (%v of CPU); HTML %d bytes, JSON %d bytes",
			n, time.Duration(r.Verification.ElapsedMillis)*time.Millisecond, built.Round(time.Millisecond), time.Since(start).Round(time.Millisecond),
			(storetest.ProcessCPU() - cpu).Round(time.Millisecond), len(page), len(js))
	}
}
