// Package sysfstest unpacks fake Linux sysfs trees for tests: cnuma's tests
// point its SysFS reader at them, topology's build whole machines from them.
//
// The trees are kept as archives (cnuma/testdata/sysfs/<case>.txtar), not as
// directories, because real sysfs names hold ':' and symbolic links, which Go
// module zips and Windows checkouts reject. A test unpacks one into a
// temporary directory:
//
//	b, err := os.ReadFile(filepath.Join("testdata", "sysfs", "two-node.txtar"))
//	if err != nil {
//		t.Fatal(err)
//	}
//	dir := t.TempDir()
//	if err := sysfstest.Extract(b, dir); err != nil {
//		t.Fatal(err)
//	}
//	nodes, err := cnuma.SysFS{Root: dir}.Nodes()
//
// Only tests import it.
package sysfstest
