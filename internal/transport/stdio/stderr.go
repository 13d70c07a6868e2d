package stdio

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
)

// stderrLine is one line of the server's stderr on its way to the logger.
type stderrLine struct {
	text      string
	truncated bool // the line was longer than maxStderrLineBytes; the rest was dropped
}

// readStderr reads the server's stderr until it ends and queues its lines for logStderr. It
// never waits for the logger: when the queue is full the line is dropped and counted, so a
// slow log sink cannot block the server on a full stderr pipe.
func (c *Conn) readStderr(lines chan<- stderrLine) {
	defer c.readers.Done()
	defer close(lines)
	defer c.stderr.Close()

	br := bufio.NewReaderSize(drainReader{c.stderr, c.done}, maxStderrLineBytes)
	skipping := false // discarding the rest of an over-long line
	for {
		frag, err := br.ReadSlice('\n')
		full := errors.Is(err, bufio.ErrBufferFull)
		if len(frag) > 0 && !skipping {
			text := bytes.TrimRight(frag, "\r\n")
			if len(text) > 0 { // blank lines carry nothing
				select {
				case lines <- stderrLine{text: string(bytes.ToValidUTF8(text, []byte("\uFFFD"))), truncated: full}:
				default:
					c.stderrDropped.Add(1)
				}
			}
		}
		skipping = full
		if err != nil && !full {
			return // EOF, or the drain deadline after exit
		}
	}
}

// logStderr logs queued stderr lines at info, reporting dropped lines as they are noticed.
func (c *Conn) logStderr(lines <-chan stderrLine) {
	defer c.readers.Done()
	ctx := context.Background()
	var reported int64
	reportDropped := func() {
		if d := c.stderrDropped.Load(); d > reported {
			c.log.LogAttrs(ctx, slog.LevelWarn, "stdio upstream stderr lines dropped: the log could not keep up",
				slog.String("stream", "stderr"), slog.Int64("dropped", d-reported))
			reported = d
		}
	}
	for l := range lines {
		reportDropped()
		if l.truncated {
			c.log.LogAttrs(ctx, slog.LevelInfo, l.text, slog.String("stream", "stderr"), slog.Bool("truncated", true))
			continue
		}
		c.log.LogAttrs(ctx, slog.LevelInfo, l.text, slog.String("stream", "stderr"))
	}
	reportDropped()
}
