// Package workflows holds no code: its test checks the GitHub Actions
// workflows in .github/workflows with actionlint (and, through it,
// shellcheck) and asserts a few properties of them, so that `make test`
// catches a broken or unsafe workflow before GitHub does.
package workflows
