package config

import (
	"os"
	"path/filepath"
	"testing"
)

// grpc.listen: ":8081" by default; the file, MODELGATE_GRPC_LISTEN and
// --grpc-listen set it in that order of precedence; an empty value in the
// file or the flag turns gRPC off, while an empty variable counts as unset
// (as every MODELGATE_* variable does).
func TestGRPCListen(t *testing.T) {
	off := filepath.Join(t.TempDir(), "off.yaml")
	if err := os.WriteFile(off, []byte("grpc:\n  listen: \"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  *string
		args []string
		want string
	}{
		{"default", nil, nil, ":8081"},
		{"file", nil, []string{"--config", "testdata/good.yaml"}, "127.0.0.1:9091"},
		{"file turns it off", nil, []string{"--config", off}, ""},
		{"env over file", ptr("127.0.0.1:7071"), []string{"--config", "testdata/good.yaml"}, "127.0.0.1:7071"},
		{"flag over env", ptr("127.0.0.1:7071"), []string{"--grpc-listen", ":6061"}, ":6061"},
		{"empty flag turns it off", ptr("127.0.0.1:7071"), []string{"--grpc-listen="}, ""},
		{"empty env is unset", ptr(""), []string{"--config", "testdata/good.yaml"}, "127.0.0.1:9091"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != nil {
				t.Setenv("MODELGATE_GRPC_LISTEN", *tc.env)
			}
			c, err := load(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if c.GRPC.Listen != tc.want {
				t.Fatalf("grpc.listen = %q, want %q", c.GRPC.Listen, tc.want)
			}
		})
	}
}

func TestGRPCMessageLimit(t *testing.T) {
	t.Setenv("MODELGATE_GRPC_MAX_MESSAGE_BYTES", "8388608")
	c, err := load(t)
	if err != nil || c.GRPC.MaxMessageBytes != 8<<20 {
		t.Fatalf("%+v %v", c.GRPC, err)
	}
	t.Setenv("MODELGATE_GRPC_MAX_MESSAGE_BYTES", "4294967296")
	if _, err := load(t); err == nil {
		t.Fatal("a 4 GiB message limit loaded")
	}
}

func ptr(s string) *string { return &s }
