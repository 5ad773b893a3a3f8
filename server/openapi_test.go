package server

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// openAPI is the embedded description, decoded.
func openAPI(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return doc
}

var operations = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// TestOpenAPIMatchesRoutes: every route the router serves is described,
// with its method, and every described operation is served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"m", "1", fakeDemo()}})
	param := regexp.MustCompile(`:([A-Za-z_]+)`)
	served := map[string]bool{}
	for _, r := range g.srv.echo.Routes() {
		served[r.Method+" "+param.ReplaceAllString(r.Path, "{$1}")] = true
	}
	described := map[string]bool{}
	for path, item := range openAPI(t)["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			if slices.Contains(operations, method) {
				described[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	for r := range served {
		if !described[r] {
			t.Errorf("%s is served but not described in server/openapi.json", r)
		}
	}
	for r := range described {
		if !served[r] {
			t.Errorf("%s is described in server/openapi.json but not served", r)
		}
	}
	if len(served) < 20 {
		t.Fatalf("only %d routes: %v", len(served), served)
	}
}

// TestOpenAPIDocument: an OpenAPI 3 document whose references all
// resolve, whose operations have unique ids and responses, and whose path
// parameters are each declared.
func TestOpenAPIDocument(t *testing.T) {
	doc := openAPI(t)
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("openapi: %v", doc["openapi"])
	}
	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if k == "$ref" {
					refs = append(refs, x.(string))
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	for _, ref := range refs {
		var at any = doc
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			m, ok := at.(map[string]any)
			if !ok || m[part] == nil {
				t.Errorf("$ref %s does not resolve", ref)
				break
			}
			at = m[part]
		}
	}
	// Path parameters, declared on the path or the operation (by
	// reference to components.parameters).
	params := doc["components"].(map[string]any)["parameters"].(map[string]any)
	names := func(list any) []string {
		var out []string
		for _, p := range list.([]any) {
			p := p.(map[string]any)
			if ref, ok := p["$ref"].(string); ok {
				p = params[strings.TrimPrefix(ref, "#/components/parameters/")].(map[string]any)
			}
			if p["in"] == "path" {
				out = append(out, p["name"].(string))
			}
		}
		return out
	}
	ids := map[string]bool{}
	inPath := regexp.MustCompile(`\{([^}]+)\}`)
	for path, item := range doc["paths"].(map[string]any) {
		item := item.(map[string]any)
		var declared []string
		if ps, ok := item["parameters"]; ok {
			declared = names(ps)
		}
		for _, method := range operations {
			op, ok := item[method].(map[string]any)
			if !ok {
				continue
			}
			all := declared
			if ps, ok := op["parameters"]; ok {
				all = append(slices.Clone(declared), names(ps)...)
			}
			for _, m := range inPath.FindAllStringSubmatch(path, -1) {
				if !slices.Contains(all, m[1]) {
					t.Errorf("%s %s: path parameter %s is not declared", method, path, m[1])
				}
			}
			id, _ := op["operationId"].(string)
			if id == "" || ids[id] {
				t.Errorf("%s %s: operationId %q missing or taken", method, path, id)
			}
			ids[id] = true
			if rs, ok := op["responses"].(map[string]any); !ok || len(rs) == 0 {
				t.Errorf("%s %s: no responses", method, path)
			}
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"m", "1", fakeDemo()}})
	code, m := g.do(http.MethodGet, "/openapi.json", nil)
	if code != http.StatusOK || m["openapi"] != openAPI(t)["openapi"] || m["info"].(map[string]any)["version"] != g.srv.opts.Version {
		t.Fatalf("%d %v", code, m["info"])
	}
	if len(m["paths"].(map[string]any)) != len(openAPI(t)["paths"].(map[string]any)) {
		t.Fatalf("paths differ from the embedded document")
	}
}
