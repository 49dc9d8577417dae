//go:build !linux && !windows

package hugepage

// Where the platform has no region code, a region is a Go heap slice,
// zeroed and backed in full from the start; Backed says so.

func (r *Region) reserve(size int) error { r.mem = make([]byte, size); return nil }
func (r *Region) commit(int) error       { return nil }
func (r *Region) prefault(int) error     { return nil }
func (r *Region) backed(int) int         { return len(r.mem) }
func (r *Region) decommit(int) error     { return nil }
func (r *Region) free([]byte) error      { return nil }
