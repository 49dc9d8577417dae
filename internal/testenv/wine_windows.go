package testenv

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"
)

// WineVersion is wine's version when the program runs under wine, "" on
// Windows itself: ntdll exports wine_get_version only under wine.
var WineVersion = sync.OnceValue(func() string {
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
