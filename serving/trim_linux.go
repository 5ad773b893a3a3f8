//go:build linux && cgo

package serving

// #include <malloc.h>
import "C"

// releaseFreedMemory hands memory that glibc's allocator holds after a
// session is destroyed back to the operating system. ONNX Runtime frees a
// session's weights and arenas with free(); without a trim, glibc keeps
// much of it in its per-thread arenas, and a gateway that swaps large
// models grows by tens of megabytes per swap until the arenas happen to
// be reused.
func releaseFreedMemory() { C.malloc_trim(0) }
