package gdpr

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/store"
)

// Errors a request is refused with.
var (
	// ErrInvalid: the request itself is wrong (its message says how); nothing was done.
	ErrInvalid = errors.New("invalid request")
	// ErrHeld: a legal hold covers what the request would destroy.
	ErrHeld = errors.New("a legal hold covers it")
	// ErrNoSubject: the log holds no key for the subject (never seen, or erased already).
	ErrNoSubject = errors.New("no key is held for this subject: it was never recorded, or it was erased already")
	// ErrNotConfigured: no data subjects are configured (compliance.subjects).
	ErrNotConfigured = errors.New("no data subjects are configured: set compliance.subject_key and compliance.subjects")
)

// Appender appends records to the audit log; *audit.Log implements it.
type Appender interface {
	Append(ctx context.Context, rec *audit.Record) (int64, error)
}

// Actor is who makes a request: the authenticated principal, as the record of the act names it,
// and where and when the request came from.
type Actor struct {
	Principal  string
	Roles      []string
	AuthMethod string
	// Via says where the request came from ("cli", "admin_api", "schedule").
	Via string
	// Received is when the data subject's request reached the organisation (zero: not given).
	// An export or erasure records it as received_at, from which the compliance report shows
	// each request's time to completion (GDPR Art. 12(3): one month).
	Received time.Time
}

// CheckReceived refuses a request's received time that is after now or more than five years
// before it.
func CheckReceived(received, now time.Time) error {
	switch {
	case received.IsZero():
		return nil
	case received.After(now):
		return invalidf("received %s is in the future", received.Format(time.RFC3339))
	case received.Before(now.AddDate(-5, 0, 0)):
		return invalidf("received %s is more than five years ago", received.Format(time.RFC3339))
	}
	return nil
}

// ParseReceived reads when a subject's request arrived: a date (2026-11-30, midnight UTC) or an
// RFC 3339 time; "" is none.
func ParseReceived(text string) (time.Time, error) {
	if text == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, text); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, text)
	if err != nil {
		return time.Time{}, invalidf("received %.40q: give a date such as 2026-11-30 or an RFC 3339 time such as 2026-11-30T09:15:00Z", text)
	}
	return t, nil
}

// receivedAt is an actor's Received as the record's detail holds it ("" when not given).
func (a Actor) receivedAt() string {
	if a.Received.IsZero() {
		return ""
	}
	return a.Received.UTC().Format(time.RFC3339)
}

// invalid is an ErrInvalid with its own message.
type invalid struct{ msg string }

func (e *invalid) Error() string        { return e.msg }
func (e *invalid) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error { return &invalid{fmt.Sprintf(format, args...)} }

// Service serves data-subject requests, retention and legal holds on one audit log.
type Service struct {
	st       store.Store
	comp     store.Compliance
	subjects *Subjects
	log      Appender
	now      func() time.Time
	logger   *slog.Logger
}

// searchAll calls fn for the records matching q in this instance's log and, when the store
// holds a deployment's logs (store.Deployment), in every other instance's: a subject's records,
// the erasures that destroyed keys and the records a hold covers are the deployment's, not one
// instance's. log is the name of the record's log ("" for a store of one log).
func (s *Service) searchAll(ctx context.Context, q store.Query, fn func(log string, r *store.Record) error) error {
	own := ""
	var others []store.NamedLog
	if d, ok := s.st.(store.Deployment); ok {
		own = d.LogName()
		var err error
		if others, err = d.OtherLogs(ctx); err != nil {
			return err
		}
	}
	if err := s.st.Search(ctx, q, func(r *store.Record) error { return fn(own, r) }); err != nil {
		return err
	}
	for _, o := range others {
		if err := o.Store.Search(ctx, q, func(r *store.Record) error { return fn(o.Name, r) }); err != nil {
			return fmt.Errorf("log %s: %w", o.Name, err)
		}
	}
	return nil
}

// ServiceOptions configures NewService.
type ServiceOptions struct {
	Logger *slog.Logger
	Now    func() time.Time
}

// NewService returns the service over st (which must implement store.Compliance), sealing with
// subjects and recording every act in log.
func NewService(st store.Store, subjects *Subjects, log Appender, opts *ServiceOptions) (*Service, error) {
	comp, ok := st.(store.Compliance)
	if !ok {
		return nil, fmt.Errorf("the audit store %T keeps no subject keys or legal holds", st)
	}
	o := ServiceOptions{}
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{st: st, comp: comp, subjects: subjects, log: log, now: o.Now, logger: o.Logger}, nil
}

func (s *Service) checkSubject(id string) error {
	if s.subjects == nil {
		return ErrNotConfigured
	}
	return CheckSubject(id)
}

// Subjects returns the sealer, for the audit log's Options.Sealer.
func (s *Service) Subjects() *Subjects { return s.subjects }

// record appends an act's record; the act is refused when it cannot be recorded.
func (s *Service) record(ctx context.Context, kind audit.Kind, actor Actor, commitment string, detail any, at time.Time) (int64, error) {
	if actor.Principal == "" || actor.AuthMethod == "" {
		return 0, errors.New("the act has no authenticated actor")
	}
	d, err := json.Marshal(detail)
	if err != nil {
		return 0, err
	}
	rec := &audit.Record{Kind: kind, Time: at, Principal: actor.Principal, Roles: actor.Roles, AuthMethod: actor.AuthMethod,
		RequestID: newID(), Detail: d}
	if commitment != "" {
		rec.Subjects = []audit.Sealed{{Commitment: commitment}}
	}
	seq, err := s.log.Append(ctx, rec)
	if err != nil {
		return 0, fmt.Errorf("record the %s: %w", kind, err)
	}
	return seq, nil
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Export is what an access or portability request returns: every record about the subject,
// with what was sealed for the subject decrypted. Nothing about anyone else: other subjects
// named in the same call appear as "[another data subject]".
type Export struct {
	Subject    string         `json:"subject"`
	ExportedAt string         `json:"exported_at"`
	Records    []ExportRecord `json:"records"`
	// Readable counts the records whose sealed data was decrypted; Unreadable, those whose key
	// is destroyed (erased).
	Readable   int `json:"readable"`
	Unreadable int `json:"unreadable"`
	// Neutralised counts keys of erased subjects found in the key table again (a restored
	// older copy) and deleted before the export.
	Neutralised int `json:"neutralised,omitempty"`
	// RecordSeq is the sequence number of the record of this request.
	RecordSeq int64 `json:"record_seq"`
}

// ExportRecord is one record about the subject.
type ExportRecord struct {
	// Log is the instance's log that holds the record, in a deployment of several (its
	// audit.log); absent with one log.
	Log       string     `json:"log,omitempty"`
	Seq       int64      `json:"seq"`
	Time      string     `json:"time"`
	Kind      audit.Kind `json:"kind"`
	RequestID string     `json:"request_id,omitempty"`
	Principal string     `json:"principal,omitempty"`
	Tool      string     `json:"tool,omitempty"`
	Decision  string     `json:"decision,omitempty"`
	// Data is what the record sealed for the subject, decrypted; absent when Erased.
	Data   *Sealing `json:"data,omitempty"`
	Erased bool     `json:"erased,omitempty"`
	// Detail is the detail of the subject's own request, erasure and hold records.
	Detail json.RawMessage `json:"detail,omitempty"`
}

// erasureDetail is the Detail of a KindErasure record: no personal data (the subject is the
// record's commitment).
type erasureDetail struct {
	Keys       []string `json:"keys"`
	Reason     string   `json:"reason,omitempty"`
	Via        string   `json:"via,omitempty"`
	ReceivedAt string   `json:"received_at,omitempty"`
}

// subjectDetail is the Detail of a KindSubject record.
type subjectDetail struct {
	Request    string `json:"request"`
	Records    int    `json:"records"`
	Readable   int    `json:"readable"`
	Via        string `json:"via,omitempty"`
	Neutralise int    `json:"neutralised,omitempty"`
	ReceivedAt string `json:"received_at,omitempty"`
}

// MaxExportRecords bounds one export.
const MaxExportRecords = 1_000_000

// Export serves an access or portability request for subject id and records it.
func (s *Service) Export(ctx context.Context, id string, actor Actor) (*Export, error) {
	if err := s.checkSubject(id); err != nil {
		return nil, err
	}
	if err := CheckReceived(actor.Received, s.now()); err != nil {
		return nil, err
	}
	c := s.subjects.Commitment(id)
	var recs []*audit.Record
	var logs []string // recs[i]'s log
	erasedKeys := map[string]bool{}
	err := s.searchAll(ctx, store.Query{Subject: c, AfterSeq: -1}, func(log string, r *store.Record) error {
		if audit.IsPruned(r.Data) {
			return nil
		}
		rec, err := audit.ParseRecord(r.Data)
		if err != nil {
			return fmt.Errorf("record %d: %w", r.Seq, err)
		}
		if rec.Kind == audit.KindErasure {
			var d erasureDetail
			if json.Unmarshal(rec.Detail, &d) == nil {
				for _, k := range d.Keys {
					erasedKeys[k] = true
				}
			}
		}
		if len(recs) >= MaxExportRecords {
			return fmt.Errorf("the subject has more than %d records", MaxExportRecords)
		}
		recs, logs = append(recs, rec), append(logs, log)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("export subject: %w", err)
	}
	out := &Export{Subject: id, ExportedAt: s.now().UTC().Format(time.RFC3339Nano), Records: []ExportRecord{}}
	// The key, unless an erasure record destroyed it: then a key still in the table is a
	// restored older copy, deleted now.
	var kid string
	var aead cipher.AEAD
	k, err := s.comp.SubjectKey(ctx, c)
	switch {
	case err == nil && erasedKeys[k.KeyID]:
		gone, derr := s.comp.DeleteSubjectKeys(ctx, nil, []string{k.KeyID})
		if derr != nil {
			return nil, fmt.Errorf("export subject: delete the key of an erased subject: %w", derr)
		}
		out.Neutralised = len(gone)
		s.logger.Warn("the key table held the key of an erased subject again (a restored older copy?); it was deleted", "key", k.KeyID)
	case err == nil:
		if aead, err = s.subjects.unwrap(k); err != nil {
			return nil, fmt.Errorf("export subject: %w", err)
		}
		kid = k.KeyID
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("export subject: %w", err)
	}
	for i, rec := range recs {
		er := ExportRecord{Log: logs[i], Seq: rec.Seq, Time: rec.Time.UTC().Format(time.RFC3339Nano), Kind: rec.Kind, RequestID: rec.RequestID,
			Principal: rec.Principal, Tool: rec.Tool, Decision: rec.Decision}
		for _, sl := range rec.Subjects {
			if sl.Commitment != c || sl.Ciphertext == "" {
				continue
			}
			if aead == nil || sl.KeyID != kid {
				er.Erased = true
				continue
			}
			data, err := open(aead, sl)
			if err != nil {
				return nil, fmt.Errorf("export subject: record %d: %w", rec.Seq, err)
			}
			er.Data = data
		}
		switch {
		case er.Data != nil:
			out.Readable++
		case er.Erased:
			out.Unreadable++
		default:
			er.Detail = rec.Detail
		}
		out.Records = append(out.Records, er)
	}
	seq, err := s.record(ctx, audit.KindSubject, actor, c,
		subjectDetail{Request: "access", Records: len(out.Records), Readable: out.Readable, Via: actor.Via, Neutralise: out.Neutralised, ReceivedAt: actor.receivedAt()}, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("export subject: %w", err)
	}
	out.RecordSeq = seq
	return out, nil
}

// Erasure is the result of an erasure.
type Erasure struct {
	Commitment string
	Keys       []string // the destroyed keys
	RecordSeq  int64    // the erasure record
}

// MaxReasonBytes bounds the reason given for an erasure or hold.
const MaxReasonBytes = 512

// Erase destroys subject id's key, after recording the erasure: the records about the subject
// stay in the log, and verify, but what they sealed can no longer be read. Refused with ErrHeld
// when a legal hold covers the subject or one of its records, with ErrNoSubject when no key
// is held.
func (s *Service) Erase(ctx context.Context, id, reason string, actor Actor) (*Erasure, error) {
	if err := s.checkSubject(id); err != nil {
		return nil, err
	}
	if len(reason) > MaxReasonBytes {
		return nil, invalidf("the reason has %d bytes, at most %d", len(reason), MaxReasonBytes)
	}
	if err := CheckReceived(actor.Received, s.now()); err != nil {
		return nil, err
	}
	c := s.subjects.Commitment(id)
	holds, err := s.activeHolds(ctx)
	if err != nil {
		return nil, err
	}
	if h := s.holdOnSubject(ctx, holds, c); h != nil {
		return nil, fmt.Errorf("erasure refused: %w: hold %s (%s)", ErrHeld, h.ID, h.Reason)
	} else if err := s.holdOnRecords(ctx, holds, c); err != nil {
		return nil, err
	}
	k, err := s.comp.SubjectKey(ctx, c)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("erasure: %w", ErrNoSubject)
	}
	if err != nil {
		return nil, fmt.Errorf("erasure: %w", err)
	}
	// The record first: if the key's deletion then fails, the record still names the key, and
	// the next export or start deletes it.
	seq, err := s.record(ctx, audit.KindErasure, actor, c, erasureDetail{Keys: []string{k.KeyID}, Reason: reason, Via: actor.Via, ReceivedAt: actor.receivedAt()}, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("erasure: %w", err)
	}
	if _, err := s.comp.DeleteSubjectKeys(ctx, []string{c}, []string{k.KeyID}); err != nil {
		return nil, fmt.Errorf("erasure recorded (record %d) but the key was not deleted; it will be at the next start or export: %w", seq, err)
	}
	return &Erasure{Commitment: c, Keys: []string{k.KeyID}, RecordSeq: seq}, nil
}

// Neutralise deletes from the key table every key an erasure record of the log (of any log of
// the deployment) destroyed: after
// a restored older copy of the key table, those keys would be readable again. It returns how
// many it deleted (0 in normal operation).
func (s *Service) Neutralise(ctx context.Context) (int, error) {
	var kids []string
	// Through the subject index (every erasure record is under audit.IndexErasures): no scan of
	// the log at start.
	err := s.searchAll(ctx, store.Query{Subject: audit.IndexErasures, AfterSeq: -1}, func(_ string, r *store.Record) error {
		rec, err := audit.ParseRecord(r.Data)
		if err != nil || rec.Kind != audit.KindErasure {
			return nil // verification reports it
		}
		var d erasureDetail
		if json.Unmarshal(rec.Detail, &d) == nil {
			kids = append(kids, d.Keys...)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read erasure records: %w", err)
	}
	n := 0
	for chunk := range slices.Chunk(kids, 500) {
		gone, err := s.comp.DeleteSubjectKeys(ctx, nil, chunk)
		if err != nil {
			return n, err
		}
		n += len(gone)
	}
	if n > 0 {
		s.logger.Warn("the key table held keys of erased subjects (a restored older copy?); they were deleted", "keys", n)
	}
	return n, nil
}
