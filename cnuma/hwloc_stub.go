//go:build !linux || !cgo

package cnuma

func loadHwloc(HwlocInput) (*HwlocTopology, error) { return nil, ErrNoHwloc }
