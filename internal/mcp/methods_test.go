package mcp

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLookupMethodAcrossEras(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method string
		in     []string // revisions that define it
	}{
		{"initialize", []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"}},
		{"notifications/initialized", []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"}},
		{"ping", []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"}},
		{"logging/setLevel", []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"}},
		{"resources/subscribe", []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"}},
		{"notifications/roots/list_changed", []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"}},
		{"server/discover", []string{"2026-07-28"}},
		{"subscriptions/listen", []string{"2026-07-28"}},
		{"notifications/subscriptions/acknowledged", []string{"2026-07-28"}},
		{"tools/call", []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"}},
		{"completion/complete", []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"}},
		{"elicitation/create", []string{"2025-06-18", "2025-11-25", "2026-07-28"}},
		{"notifications/elicitation/complete", []string{"2025-11-25"}},
		{"tasks/result", []string{"2025-11-25"}},
		{"tasks/get", []string{"2025-11-25", "2026-07-28"}},
		{"tasks/update", []string{"2026-07-28"}},
		{"no/such/method", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, v := range Supported() {
			if _, ok := LookupMethod(tt.method, v); ok {
				got = append(got, v)
			}
		}
		slices.Sort(got)
		if diff := cmp.Diff(tt.in, got); diff != "" {
			t.Errorf("%s: revisions (-want +got):\n%s", tt.method, diff)
		}
	}
	if _, ok := LookupMethod("tools/call", "2099-01-01"); ok {
		t.Error("LookupMethod answered for an unknown revision")
	}
}

func TestMethodShapeChanges(t *testing.T) {
	t.Parallel()
	legacy, _ := LookupMethod("sampling/createMessage", "2025-11-25")
	modern, _ := LookupMethod("sampling/createMessage", "2026-07-28")
	if legacy.Kind != KindRequest || modern.Kind != KindInputRequest {
		t.Errorf("sampling/createMessage kinds = %v, %v; want request (legacy), input request (modern)", legacy.Kind, modern.Kind)
	}
	task, _ := LookupMethod("tasks/get", "2026-07-28")
	if task.Extension != ExtensionTasks || task.NameParam != "taskId" {
		t.Errorf("modern tasks/get = %+v; want the tasks extension with Mcp-Name from taskId", task)
	}
	if legacyTask, _ := LookupMethod("tasks/get", "2025-11-25"); legacyTask.Extension != "" || legacyTask.Sender != SenderBoth {
		t.Errorf("2025-11-25 tasks/get = %+v; want core, sent by either side", legacyTask)
	}
}

func TestNameParam(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"tools/call":     "name",
		"prompts/get":    "name",
		"resources/read": "uri",
		"tasks/get":      "taskId",
		"tasks/update":   "taskId",
		"tasks/cancel":   "taskId",
	}
	for _, m := range MethodsIn(Latest) {
		if got := NameParam(m.Method); got != want[m.Method] {
			t.Errorf("NameParam(%q) = %q, want %q", m.Method, got, want[m.Method])
		}
		if m.NameParam != want[m.Method] {
			t.Errorf("method table: %s NameParam = %q, want %q", m.Method, m.NameParam, want[m.Method])
		}
	}
}

func TestMethodsByEra(t *testing.T) {
	t.Parallel()
	names := func(ms []MethodInfo, kind MethodKind) []string {
		var out []string
		for _, m := range ms {
			if m.Kind == kind && m.Extension == "" {
				out = append(out, m.Method)
			}
		}
		slices.Sort(out)
		return out
	}
	byEra := MethodsByEra()
	// The client and server requests of the 2026-07-28 schema.
	wantModern := []string{"completion/complete", "prompts/get", "prompts/list", "resources/list", "resources/read",
		"resources/templates/list", "server/discover", "subscriptions/listen", "tools/call", "tools/list"}
	if diff := cmp.Diff(wantModern, names(byEra[EraModern], KindRequest)); diff != "" {
		t.Errorf("modern requests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"elicitation/create", "roots/list", "sampling/createMessage"}, names(byEra[EraModern], KindInputRequest)); diff != "" {
		t.Errorf("modern input requests (-want +got):\n%s", diff)
	}
	// The requests of the 2025-11-25 schema.
	wantLegacy := []string{"completion/complete", "elicitation/create", "initialize", "logging/setLevel", "ping",
		"prompts/get", "prompts/list", "resources/list", "resources/read", "resources/subscribe",
		"resources/templates/list", "resources/unsubscribe", "roots/list", "sampling/createMessage",
		"tasks/cancel", "tasks/get", "tasks/list", "tasks/result", "tools/call", "tools/list"}
	if diff := cmp.Diff(wantLegacy, names(byEra[EraLegacy], KindRequest)); diff != "" {
		t.Errorf("legacy requests (-want +got):\n%s", diff)
	}
	wantModernNotes := []string{"notifications/cancelled", "notifications/message", "notifications/progress",
		"notifications/prompts/list_changed", "notifications/resources/list_changed", "notifications/resources/updated",
		"notifications/subscriptions/acknowledged", "notifications/tools/list_changed"}
	if diff := cmp.Diff(wantModernNotes, names(byEra[EraModern], KindNotification)); diff != "" {
		t.Errorf("modern notifications (-want +got):\n%s", diff)
	}
	wantLegacyNotes := []string{"notifications/cancelled", "notifications/elicitation/complete", "notifications/initialized",
		"notifications/message", "notifications/progress", "notifications/prompts/list_changed",
		"notifications/resources/list_changed", "notifications/resources/updated", "notifications/roots/list_changed",
		"notifications/tasks/status", "notifications/tools/list_changed"}
	if diff := cmp.Diff(wantLegacyNotes, names(byEra[EraLegacy], KindNotification)); diff != "" {
		t.Errorf("legacy notifications (-want +got):\n%s", diff)
	}
	var inputRequired []string
	for _, m := range byEra[EraModern] {
		if m.InputRequired {
			inputRequired = append(inputRequired, m.Method)
		}
	}
	slices.Sort(inputRequired)
	if diff := cmp.Diff([]string{"prompts/get", "resources/read", "tools/call"}, inputRequired); diff != "" {
		t.Errorf("methods that may return InputRequiredResult (-want +got):\n%s", diff)
	}
}
