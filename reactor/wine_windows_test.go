package reactor

import (
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// wineVersion is wine's version when the test runs under wine ("" on
// Windows): ntdll exports wine_get_version only there.
var wineVersion = sync.OnceValue(func() string {
	p := windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version")
	if p.Find() != nil {
		return ""
	}
	r, _, _ := p.Call()
	if r == 0 {
		return "unknown"
	}
	return windows.BytePtrToString(*(**byte)(unsafe.Pointer(&r)))
})

// hresultFromNTSuccess is HRESULT_FROM_NT(STATUS_SUCCESS), which wine 8's
// GetThreadDescription returns on success instead of S_OK.
const hresultFromNTSuccess = syscall.Errno(0x10000000)

func unsafePointer(p *uint16) unsafe.Pointer { return unsafe.Pointer(p) }
