package topology

// Discover returns this machine's topology and the CPUs this process may run
// on. With cgo on Linux it asks hwloc and libnuma; without cgo it reads sysfs;
// on Windows it asks kernel32. Call it once at start-up: it reads many files.
func Discover() (*Topology, error) { return discover() }
