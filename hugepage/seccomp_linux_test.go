package hugepage

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hioload-ws/hioload-ws/internal/testenv"
)

// TestUnboundUnderSeccomp runs a child process that refuses mbind,
// get_mempolicy, set_mempolicy and move_pages with EPERM, as Docker's default
// seccomp profile does for a container without CAP_SYS_NICE, and checks that
// the pool still works
// and reports its memory as unbound with the reason, not as bound.
func TestUnboundUnderSeccomp(t *testing.T) {
	if os.Getenv("HUGEPAGE_SECCOMP_CHILD") == "1" {
		seccompChild()
		return
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("the seccomp filter below checks amd64 syscall numbers")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestUnboundUnderSeccomp$", "-test.count=1")
	cmd.Env = append(os.Environ(), "HUGEPAGE_SECCOMP_CHILD=1")
	out, err := cmd.CombinedOutput()
	text := string(out)
	if strings.Contains(text, "SKIP-SECCOMP:") {
		t.Skip(text[strings.Index(text, "SKIP-SECCOMP:"):])
	}
	if err != nil {
		t.Fatalf("child: %v\n%s", err, text)
	}
	i := strings.Index(text, "ARENA: ")
	if i < 0 {
		t.Fatalf("child printed no arena:\n%s", text)
	}
	line := text[i:]
	line, _, _ = strings.Cut(line, "\n")
	if !strings.Contains(line, "NOT bound to node 0: mbind: operation not permitted") ||
		!strings.Contains(line, "placement not checked") {
		t.Fatalf("unbound arena not reported as such: %s", line)
	}
	t.Log(line)
}

// seccompChild installs the filter on every thread, builds a pool and prints
// its arena; the parent judges the output.
func seccompChild() {
	if err := testenv.DenySyscalls(unix.SYS_MBIND, unix.SYS_GET_MEMPOLICY, unix.SYS_SET_MEMPOLICY, unix.SYS_MOVE_PAGES); err != nil {
		fmt.Println("SKIP-SECCOMP:", err)
		return
	}
	p, err := New(Config{Node: 0, Classes: smallClasses})
	if err != nil {
		fmt.Println("New:", err)
		os.Exit(1)
	}
	b, err := p.Get(4096)
	if err != nil {
		fmt.Println("Get:", err)
		os.Exit(1)
	}
	b.Bytes()[0] = 1
	b.Release()
	fmt.Println("ARENA: " + p.Arena().String())
	if err := p.Close(); err != nil {
		fmt.Println("Close:", err)
		os.Exit(1)
	}
}
