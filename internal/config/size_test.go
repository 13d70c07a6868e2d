package config

import (
	"strings"
	"testing"
)

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    ByteSize
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "4194304", want: 4 * MiB},
		{in: "512B", want: 512},
		{in: "512KiB", want: 512 * KiB},
		{in: "4MiB", want: 4 * MiB},
		{in: "4 MiB", want: 4 * MiB},
		{in: " 1GiB ", want: GiB},
		{in: "4MB", wantErr: `unknown unit "MB": use "MiB" (1048576 bytes)`},
		{in: "64kb", wantErr: `unknown unit "kb": use "KiB" (1024 bytes)`},
		{in: "1G", wantErr: `unknown unit "G": use "GiB"`},
		{in: "3TiB", wantErr: `unknown unit "TiB": want B, KiB, MiB or GiB`},
		{in: "1.5MiB", wantErr: "want a whole number"},
		{in: "-1", wantErr: "want a whole number of bytes"},
		{in: "", wantErr: "want a whole number of bytes"},
		{in: "MiB", wantErr: "want a whole number of bytes"},
		{in: "99999999999999999999", wantErr: "number is too large"},
		{in: "9999999999GiB", wantErr: "number is too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseByteSize(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ParseByteSize(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseByteSize(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestByteSizeString(t *testing.T) {
	tests := []struct {
		in   ByteSize
		want string
	}{
		{0, "0B"},
		{1000, "1000B"},
		{1536 * KiB, "1536KiB"},
		{4 * MiB, "4MiB"},
		{2 * GiB, "2GiB"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
		if back, err := ParseByteSize(tt.in.String()); err != nil || back != tt.in {
			t.Errorf("ParseByteSize(%q) = %v, %v; want the round trip to %d", tt.in.String(), back, err, int64(tt.in))
		}
	}
}
