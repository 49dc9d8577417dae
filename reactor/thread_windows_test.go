package reactor

import (
	"syscall"
	"unsafe"
)

// hresultFromNTSuccess is HRESULT_FROM_NT(STATUS_SUCCESS), which wine 8's
// GetThreadDescription returns on success instead of S_OK.
const hresultFromNTSuccess = syscall.Errno(0x10000000)

func unsafePointer(p *uint16) unsafe.Pointer { return unsafe.Pointer(p) }
