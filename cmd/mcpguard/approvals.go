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

	"github.com/mcpguard/mcpguard/internal/admin"
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
	// legacyAdminTokenEnv is read when MCPGUARD_OPERATOR_TOKEN is empty: the variable this
	// command named before every admin command read the same one.
	const legacyAdminTokenEnv = "MCPGUARD_ADMIN_TOKEN"
	client := func() (*adminClient, error) {
		tok := os.Getenv(tokenEnv)
		if tok == "" && tokenEnv == operatorTokenEnv {
			tok = os.Getenv(legacyAdminTokenEnv) // the name this command read before
		}
		if tok == "" {
			return nil, fmt.Errorf("set %s to your operator session token (mcps_…, from `mcpguard operators login` or the OIDC login): only an operator who logged in with MFA can approve or deny; it is read from the environment so it never shows in the process list", tokenEnv)
		}
		return &adminClient{base: base, token: tok, http: &http.Client{Timeout: 30 * time.Second}}, nil
	}
	cmd := &cobra.Command{
		Use:   "approvals",
		Short: "List, approve and deny calls held for human approval (a client of the admin API)",
		Long: `List, approve and deny calls held for human approval, through the admin API (admin.listen).

Deciding takes a human operator's session: log in with ` + "`mcpguard operators login`" + ` (password and
TOTP) or the admin API's OIDC login at a provider that reports MFA (amr), and put the mcps_… token
in $MCPGUARD_OPERATOR_TOKEN, as every admin command. API keys, access tokens and client certificates may list the calls of
their roles but never decide them, and no operator may approve a call made under their own name.

Each held call shows the SHA-256 of its arguments exactly as the agent sent them; pass it with
--digest to decide on exactly what you checked: a call with other arguments is refused (409).`,
	}
	cmd.PersistentFlags().StringVar(&base, "admin", "http://127.0.0.1:8081", "the admin API's URL (admin.listen)")
	cmd.PersistentFlags().StringVar(&tokenEnv, "token-env", operatorTokenEnv, "environment variable holding your operator session token")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the held calls of your roles, with their arguments' SHA-256",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var out struct {
				Approvals []admin.Approval `json:"approvals"`
			}
			if err := c.do(http.MethodGet, "/v1/approvals", nil, &out); err != nil {
				return err
			}
			if len(out.Approvals) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no calls wait for you")
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tPRINCIPAL\tTOOL\tROLE\tEXPIRES\tARGUMENTS_SHA256\tARGUMENTS")
			for _, a := range out.Approvals {
				status := a.Status
				if a.ApprovedBy != "" {
					status += " by " + a.ApprovedBy
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, status, a.Principal, a.Tool, a.ApproverRole,
					a.Expires.Format(time.RFC3339), a.ArgumentsSHA256, a.Arguments)
			}
			return tw.Flush()
		},
	}
	decide := func(approve bool) *cobra.Command {
		verb := "deny"
		if approve {
			verb = "approve"
		}
		var req admin.DecideRequest
		c := &cobra.Command{
			Use:   verb + " ID [--digest SHA256] [--reason TEXT]",
			Short: strings.ToUpper(verb[:1]) + verb[1:] + " a held call (as an operator logged in with MFA)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				cl, err := client()
				if err != nil {
					return err
				}
				var out admin.DecideResponse
				if err := cl.do(http.MethodPost, "/v1/approvals/"+args[0]+"/"+verb, req, &out); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %s for %s (arguments sha256 %s)\n", out.Decision, out.ID, out.Tool, out.Principal, out.ArgumentsSHA256)
				return nil
			},
		}
		c.Flags().StringVar(&req.Reason, "reason", "", "why (recorded in the audit log)")
		c.Flags().StringVar(&req.ArgumentsSHA256, "digest", "", "the arguments' SHA-256 as listed: the decision is refused if the held call's arguments differ")
		return c
	}
	cmd.AddCommand(list, decide(true), decide(false))
	return cmd
}
