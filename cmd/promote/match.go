package main

import (
	"strings"

	"github.com/modelgate/modelgate/canary/release"
	"github.com/spf13/cobra"
)

// matchFlag adds canary start's --match (repeatable) to cmd, collecting
// the rules as given into rules.
func matchFlag(cmd *cobra.Command, rules *[]string) {
	cmd.Flags().StringArrayVar(rules, "match", nil,
		"send requests whose header or cookie matches to the candidate whatever the weight, as a cohort of their own in the analysis, until promotion or rollback: "+
			"header:NAME=VALUE, header:NAME=~REGEX, cookie:NAME=VALUE or cookie:NAME=~REGEX (the regex matches the whole value) (repeatable: any rule matches)")
}

// parseMatches reads the --match rules into the plan's form; a bad one is
// a usage error naming it.
func parseMatches(rules []string) ([]release.MatchRule, error) {
	var out []release.MatchRule
	for _, s := range rules {
		m, err := release.ParseMatch(s)
		switch {
		case err != nil && strings.Contains(err.Error(), s):
			return nil, usageError("--match: %v", err)
		case err != nil:
			return nil, usageError("--match %q: %v", s, err)
		}
		out = append(out, m)
	}
	return out, nil
}
