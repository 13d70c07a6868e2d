package wiring

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/export"
	"github.com/mcpguard/mcpguard/internal/gdpr"
	"github.com/mcpguard/mcpguard/internal/redact"
	"github.com/mcpguard/mcpguard/internal/store/backend"
	"github.com/mcpguard/mcpguard/internal/witness"
)

// audit opens the store (the backend its DSN names), the redactor, the export sinks and the log,
// and, with a compliance section, seals data subjects' arguments and applies the retention.
func (b *builder) audit(ctx context.Context, a *config.Audit, cc *config.Compliance) error {
	st, err := backend.Open(ctx, a.Database.Reveal(), backend.Options{Logger: b.logger, Log: a.Log, Schema: a.Schema, LeaseTTL: a.LeaseTTL, Writer: true})
	if err != nil {
		return fmt.Errorf("audit.database: %w", err)
	}
	origin, checkpointDir := audit.Named(a.Log, a.CheckpointDir)
	subjects, err := subjectSealer(st, cc, b.now)
	if err != nil {
		st.Close()
		return err
	}
	signer, err := audit.LoadSigner(a.SigningKeyFile)
	if err != nil {
		st.Close()
		return fmt.Errorf("audit.signing_key_file: %w", err)
	}
	red, err := redact.New([]byte(a.RedactionKey.Reveal()), &redact.Options{ExtraSensitiveKeys: a.SensitiveKeys, AllowKeys: a.KeepInClear})
	if err != nil {
		st.Close()
		return fmt.Errorf("audit.redaction_key: %w", err)
	}
	// Export sinks: best-effort copies of every durable record, closed by the log's Close.
	var sinks []audit.Sink
	closeSinks := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), audit.SinkCloseTimeout)
		defer cancel()
		for _, s := range sinks {
			_ = s.Close(ctx)
		}
	}
	for i, sc := range a.Sinks {
		so := export.Options{Logger: b.logger, Buffer: sc.Buffer}
		var s *export.Sink
		switch {
		case sc.JSONL != nil:
			s, err = export.NewFile(sc.Name, sc.JSONL.Path, &export.FileOptions{
				Options: so, MaxSize: int64(sc.JSONL.MaxSize), MaxAge: sc.JSONL.MaxAge, Keep: sc.JSONL.Keep,
			})
		case sc.Syslog != nil:
			o := &export.SyslogOptions{Options: so, AppName: sc.Syslog.AppName, Hostname: sc.Syslog.Hostname}
			if sc.Syslog.Facility != "" {
				f, ferr := export.ParseFacility(sc.Syslog.Facility)
				if ferr != nil {
					err = ferr
					break
				}
				o.Facility = &f
			}
			if sc.Syslog.TLS {
				o.TLS = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: sc.Syslog.ServerName}
				if sc.Syslog.CAFile != "" {
					pem, rerr := os.ReadFile(sc.Syslog.CAFile)
					o.TLS.RootCAs = x509.NewCertPool()
					if rerr != nil {
						err = rerr
						break
					}
					if !o.TLS.RootCAs.AppendCertsFromPEM(pem) {
						err = fmt.Errorf("ca_file %s holds no PEM certificate", sc.Syslog.CAFile)
						break
					}
				}
			}
			s, err = export.NewSyslog(sc.Name, sc.Syslog.Address, o)
		case sc.Webhook != nil:
			so.MaxBatch = sc.Webhook.BatchSize
			s, err = export.NewWebhook(sc.Name, sc.Webhook.URL, &export.WebhookOptions{Options: so, BearerToken: sc.Webhook.BearerToken.Reveal()})
		default:
			err = errors.New("want one of jsonl, syslog or webhook")
		}
		if err != nil {
			closeSinks()
			st.Close()
			return fmt.Errorf("audit.sinks[%d] (%s): %w", i, sc.Name, err)
		}
		sinks = append(sinks, s)
	}
	// Witnesses: best-effort cosigners of every checkpoint, closed by the log's Close.
	var witnesses []audit.Witness
	for i, wc := range a.Witnesses {
		v, err := witness.NewVerifier(wc.Key)
		if err != nil {
			closeSinks()
			closeWitnesses(ctx, witnesses)
			st.Close()
			return fmt.Errorf("audit.witnesses[%d].key: %w", i, err)
		}
		witnesses = append(witnesses, witness.NewClient(wc.URL, v, &witness.ClientOptions{Logger: b.logger, Dir: checkpointDir}))
	}
	opts := &audit.Options{
		Logger: b.logger, Redactor: red, Signer: signer, Origin: origin, CheckpointDir: checkpointDir,
		CheckpointEvery: int64(a.CheckpointEvery), CheckpointInterval: a.CheckpointInterval, Now: b.now,
		Sinks: sinks, Witnesses: witnesses,
	}
	if subjects != nil {
		opts.Sealer = subjects
	}
	l, err := audit.Open(ctx, st, opts)
	if err != nil {
		closeSinks()
		closeWitnesses(ctx, witnesses)
		st.Close()
		return fmt.Errorf("audit: %w", err)
	}
	b.auditStore, b.p.Audit, b.p.Redactor = st, l, red
	if cc != nil {
		svc, err := gdpr.NewService(st, subjects, l, &gdpr.ServiceOptions{Logger: b.logger, Now: b.now})
		if err != nil {
			return fmt.Errorf("compliance: %w", err)
		}
		// A restored older key table would make erased subjects readable again.
		if _, err := svc.Neutralise(ctx); err != nil {
			return fmt.Errorf("compliance: %w", err)
		}
		b.compliance = svc
		if subjects != nil {
			b.p.Subjects = subjectsAPI{svc}
		}
		if len(cc.Retention) > 0 {
			go applyRetention(l, svc, cc, b.now, b.logger)
		}
	}
	return nil
}

// closeWitnesses stops witness clients that no log will close (they hold nothing yet).
func closeWitnesses(ctx context.Context, ws []audit.Witness) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), audit.SinkCloseTimeout)
	defer cancel()
	for _, w := range ws {
		_ = w.Close(ctx)
	}
}
