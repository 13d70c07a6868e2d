// Command console-upstream is the console interop stage's second upstream: a stdio MCP server
// (the official go-sdk) with one tool, research.note, whose description is read from a file at
// start. The stage starts the gateway once with a plain description, which tool pinning trusts
// on first use, then again with a changed one carrying hostile markup, which pinning holds back
// for an operator to review in the console.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// maxDescription bounds the description file this program reads.
const maxDescription = 64 << 10

type noteArgs struct {
	Topic string `json:"topic" jsonschema:"the subject of the note"`
}

func main() {
	descFile := flag.String("description-file", "", "the file whose text is the tool's description (required)")
	flag.Parse()
	log.SetPrefix("console-upstream: ")
	log.SetFlags(0)
	if *descFile == "" {
		log.Fatal("-description-file is required")
	}
	desc, err := readDescription(*descFile)
	if err != nil {
		log.Fatal(err)
	}
	server := mcp.NewServer(&mcp.Implementation{Name: "console-upstream", Version: "1"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "note", Description: desc},
		func(_ context.Context, _ *mcp.CallToolRequest, in noteArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "note on " + in.Topic}}}, nil, nil
		})
	if err := server.Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		log.Fatal(err)
	}
}

func readDescription(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the description: %w", err)
	}
	if len(b) > maxDescription {
		return "", fmt.Errorf("%s holds %d bytes, more than %d", path, len(b), maxDescription)
	}
	return strings.TrimRight(string(b), "\n"), nil
}
