package server

import (
	"compress/zlib"
	"io"

	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // the "gzip" message encoding
)

// Compressed gRPC messages, as HTTP takes compressed bodies: "gzip" (grpc's
// own codec) and "deflate" (the zlib format, as gRPC's C core writes it, so
// that tritonclient's compression_algorithm="deflate" works). The message
// limit applies to the decompressed message (grpc checks it), so a small
// compressed message cannot blow up past it. A response is compressed as
// its request was.

func init() { encoding.RegisterCompressor(deflate{}) }

type deflate struct{}

func (deflate) Name() string { return "deflate" }

func (deflate) Compress(w io.Writer) (io.WriteCloser, error) { return zlib.NewWriter(w), nil }

func (deflate) Decompress(r io.Reader) (io.Reader, error) { return zlib.NewReader(r) }
