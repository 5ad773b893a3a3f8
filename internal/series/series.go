// Package series memoizes the children of Prometheus metric vectors that
// the request path updates on every request.
package series

import "sync"

// Cache maps label values to a child of a metric vector, so that a request
// finds its series with one map read under a read lock instead of
// client_golang's hashing and validation of every label value on each
// update. Only for vectors whose series are never deleted: a deleted child
// would stay cached, and its updates would be lost.
type Cache[K comparable, V any] struct {
	mu   sync.RWMutex
	m    map[K]V
	make func(K) V
}

// New returns a cache that creates a missing child with make.
func New[K comparable, V any](make func(K) V) *Cache[K, V] {
	return &Cache[K, V]{m: map[K]V{}, make: make}
}

// Get returns the child for k, creating it on first use.
func (c *Cache[K, V]) Get(k K) V {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[k]; ok {
		return v
	}
	v = c.make(k)
	c.m[k] = v
	return v
}
