/*
 * bcryptprimitives.dll shim for wine < 9: exports ProcessPrng, which every
 * Go >= 1.22 Windows binary resolves at start (runtime/os_windows.go), on top
 * of advapi32's SystemFunction036 (RtlGenRandom), which wine has had for long.
 * Windows itself ships the real DLL; this file is only for running tests
 * under wine (scripts/wine-setup.sh builds and installs it).
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    /* RtlGenRandom takes a ULONG: feed it in chunks. */
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
    (void)inst; (void)reason; (void)reserved;
    return TRUE;
}
