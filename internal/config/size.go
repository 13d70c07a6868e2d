package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ByteSize is a number of bytes. In the configuration file it is written as
// an integer number of bytes (4194304) or as a string with a binary unit:
// "512B", "512KiB", "4MiB", "1GiB" (a space before the unit is allowed).
// Decimal units such as "MB" are rejected because they are read both as
// 10^6 and 2^20 by different people.
type ByteSize int64

// Binary size units.
const (
	B   ByteSize = 1
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
)

// String formats the size with the largest binary unit that divides it
// exactly ("4MiB", "1536KiB", "1000B").
func (s ByteSize) String() string {
	for _, u := range []struct {
		size ByteSize
		name string
	}{{GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if s != 0 && s%u.size == 0 {
			return strconv.FormatInt(int64(s/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// ParseByteSize parses a size written with a binary unit ("4MiB", "512 KiB",
// "100B") or as a bare integer number of bytes.
func ParseByteSize(text string) (ByteSize, error) {
	s := strings.TrimSpace(text)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, errors.New(`want a whole number of bytes or a number with a unit such as "512KiB" or "4MiB"`)
	}
	if i < len(s) && (s[i] == '.' || s[i] == ',') {
		return 0, errors.New(`want a whole number: write "1536KiB" rather than "1.5MiB"`)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, errors.New("number is too large")
	}
	unit := strings.TrimLeft(s[i:], " ")
	var mult ByteSize
	switch unit {
	case "", "B":
		mult = B
	case "KiB":
		mult = KiB
	case "MiB":
		mult = MiB
	case "GiB":
		mult = GiB
	default:
		hint := "want B, KiB, MiB or GiB"
		switch strings.ToLower(unit)[0] {
		case 'k':
			hint = `use "KiB" (1024 bytes)`
		case 'm':
			hint = `use "MiB" (1048576 bytes)`
		case 'g':
			hint = `use "GiB" (1073741824 bytes)`
		}
		return 0, fmt.Errorf("unknown unit %s: %s", quote(unit), hint)
	}
	if n > math.MaxInt64/int64(mult) {
		return 0, errors.New("number is too large")
	}
	return ByteSize(n) * mult, nil
}
