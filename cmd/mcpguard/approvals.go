package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// adminClient is the CLI's thin client of the admin API.
type adminClient struct {
	base  string
	token string
	http  *http.Client
}

func (c *adminClient) do(method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimRight(c.base, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin API %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("admin API: %s (HTTP %d)", e.Error, resp.StatusCode)
		}
		return fmt.Errorf("admin API: HTTP %d", resp.StatusCode)
	}
	return json.Unmarshal(b, out)
}

func newApprovalsCmd() *cobra.Command {
	var base, tokenEnv string
	client := func() (*adminClient, error) {
		tok := os.Getenv(tokenEnv)
		if tok == "" {
			return nil, fmt.Errorf("set %s to your credential for the admin API (an API key or an access token); it is read from the environment so it never shows in the process list", tokenEnv)
		}
		return &adminClient{base: base, token: tok, http: &http.Client{Timeout: 30 * time.Second}}, nil
	}
	cmd := &cobra.Command{Use: "approvals", Short: "List, approve and deny calls held for human approval (a client of the admin API)"}
	cmd.PersistentFlags().StringVar(&base, "admin", "http://127.0.0.1:8081", "the admin API's URL (admin.listen)")
	cmd.PersistentFlags().StringVar(&tokenEnv, "token-env", "MCPGUARD_ADMIN_TOKEN", "environment variable holding your credential")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the held calls you may decide",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var out struct {
				Approvals []struct {
					ID, Principal, Tool, Rule string
					ApproverRole              string          `json:"approver_role"`
					Expires                   time.Time       `json:"expires"`
					Arguments                 json.RawMessage `json:"arguments"`
				}
			}
			if err := c.do(http.MethodGet, "/v1/approvals", nil, &out); err != nil {
				return err
			}
			if len(out.Approvals) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no calls wait for you")
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPRINCIPAL\tTOOL\tROLE\tEXPIRES\tARGUMENTS")
			for _, a := range out.Approvals {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Principal, a.Tool, a.ApproverRole, a.Expires.Format(time.RFC3339), a.Arguments)
			}
			return tw.Flush()
		},
	}
	decide := func(approve bool) *cobra.Command {
		verb := "deny"
		if approve {
			verb = "approve"
		}
		var reason string
		c := &cobra.Command{
			Use:   verb + " ID [--reason TEXT]",
			Short: strings.ToUpper(verb[:1]) + verb[1:] + " a held call",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				cl, err := client()
				if err != nil {
					return err
				}
				var out map[string]any
				if err := cl.do(http.MethodPost, "/v1/approvals/"+args[0]+"/"+verb, map[string]string{"reason": reason}, &out); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %v: %v for %v\n", out["decision"], out["id"], out["tool"], out["principal"])
				return nil
			},
		}
		c.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)")
		return c
	}
	cmd.AddCommand(list, decide(true), decide(false))
	return cmd
}
