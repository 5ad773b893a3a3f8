package miniotest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestLifecycle starts a server, stores an object, kills the server,
// restarts it on the same port and data, and finds the object again.
func TestLifecycle(t *testing.T) {
	s := Start(t)
	if !s.Running() {
		t.Fatal("Running() = false after Start")
	}
	ctx := t.Context()
	bucket := s.NewBucket(t)
	c := s.Client()
	if _, err := c.PutObject(ctx, bucket, "k", bytes.NewReader([]byte("kept")), 4, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	s.Kill()
	if s.Running() {
		t.Fatal("Running() = true after Kill")
	}
	if conn, err := net.Dial("tcp", s.Endpoint); err == nil {
		_ = conn.Close()
		t.Fatalf("%s still accepts connections after Kill", s.Endpoint)
	}

	endpoint := s.Endpoint
	s.Restart(t)
	if s.Endpoint != endpoint {
		t.Errorf("Restart moved the server from %s to %s", endpoint, s.Endpoint)
	}
	obj, err := s.Client().GetObject(ctx, bucket, "k", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil || string(data) != "kept" {
		t.Errorf("after Restart: %q, %v; want %q", data, err, "kept")
	}

	s.Stop()
	s.Stop() // a no-op
	if s.Running() {
		t.Error("Running() = true after Stop")
	}
}

func TestEnv(t *testing.T) {
	s := &Server{Endpoint: "127.0.0.1:1", AccessKey: "ak", SecretKey: "sk"}
	got := strings.Join(s.Env(), " ")
	for _, want := range []string{"MODELGATE_S3_ENDPOINT=127.0.0.1:1", "MODELGATE_S3_INSECURE=true", "AWS_ACCESS_KEY_ID=ak", "AWS_SECRET_ACCESS_KEY=sk"} {
		if !strings.Contains(got, want) {
			t.Errorf("Env() = %s, missing %s", got, want)
		}
	}
}

func TestFindBinary(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "minio")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     string
		wantErr bool
	}{
		{"from the environment", exe, false},
		{"missing", filepath.Join(dir, "nope"), true},
		{"not executable", plain, true},
		{"a directory", dir, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvBin, tc.env)
			p, err := findBinary()
			if tc.wantErr {
				if err == nil {
					t.Errorf("findBinary() = %s, want an error", p)
				}
				return
			}
			if err != nil || p != tc.env {
				t.Errorf("findBinary() = %s, %v; want %s", p, err, tc.env)
			}
		})
	}

	t.Run("in the module", func(t *testing.T) {
		root := t.TempDir()
		sub := filepath.Join(root, "a", "b")
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Setenv(EnvBin, "")
		t.Chdir(sub)
		_, err := findBinary()
		if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), filepath.Join(root, binInModule)) {
			t.Errorf("findBinary() error = %v, want one naming %s", err, filepath.Join(root, binInModule))
		}
		bin := filepath.Join(root, binInModule)
		if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if p, err := findBinary(); err != nil || p != bin {
			t.Errorf("findBinary() = %s, %v; want %s", p, err, bin)
		}
	})
}
