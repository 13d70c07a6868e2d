package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// DefaultChromium is the browser that prints PDF reports.
const DefaultChromium = "/usr/bin/chromium"

// PDFTimeout bounds one PDF printing.
const PDFTimeout = 2 * time.Minute

// maxBrowserOutput bounds what is kept of the browser's own output, for an error message.
const maxBrowserOutput = 4096

// PDF prints an HTML report (as HTML returns it) to PDF with headless Chromium at browser
// (default DefaultChromium) and returns the PDF's bytes. The page loads nothing and runs no
// script; the browser runs in a temporary profile, removed afterwards.
func PDF(ctx context.Context, browser string, page []byte) ([]byte, error) {
	if browser == "" {
		browser = DefaultChromium
	}
	if _, err := exec.LookPath(browser); err != nil {
		return nil, fmt.Errorf("print the PDF: %s is not installed (apt-get install chromium): %w", browser, err)
	}
	dir, err := os.MkdirTemp("", "mcpguard-report-")
	if err != nil {
		return nil, fmt.Errorf("print the PDF: %w", err)
	}
	defer os.RemoveAll(dir)
	in, out := filepath.Join(dir, "report.html"), filepath.Join(dir, "report.pdf")
	if err := os.WriteFile(in, page, 0o600); err != nil {
		return nil, fmt.Errorf("print the PDF: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, PDFTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-extensions",
		"--no-first-run", "--no-pdf-header-footer", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--print-to-pdf="+out, "file://"+in)
	var output limitedBuffer
	cmd.Stdout, cmd.Stderr = &output, &output
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("print the PDF with %s: %w: %s", browser, err, bytes.TrimSpace(output.b.Bytes()))
	}
	pdf, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("print the PDF with %s: no PDF was written: %w: %s", browser, err, bytes.TrimSpace(output.b.Bytes()))
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF")) {
		return nil, errors.New("print the PDF: the browser wrote something that is not a PDF")
	}
	return pdf, nil
}

// limitedBuffer keeps the first maxBrowserOutput bytes written to it.
type limitedBuffer struct{ b bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxBrowserOutput - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
