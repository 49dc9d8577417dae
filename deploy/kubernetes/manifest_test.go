// Package kubernetes_test renders the kustomize base and overlays in this
// directory and checks every object they make against the real Kubernetes
// API types (unknown fields fail) and against echo itself: its flag parser
// must accept the container's arguments, its probes must answer on the
// paths and ports the manifests name, and the grace period and the huge
// pages must cover what echo says it needs. It is a module of its own so
// that the Kubernetes libraries never enter the main module; scripts/test.sh
// runs it.
package kubernetes_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// kustomizations are the directories rendered: the base and every overlay.
var kustomizations = []string{"base", "overlays/two-socket", "overlays/autoscale"}

// echoBin is the echo command built from this checkout (TestMain).
var echoBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "deploy-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	echoBin = filepath.Join(dir, "echo")
	build := exec.Command("go", "build", "-o", echoBin, "./echo")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building echo: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// objects is one rendering, decoded.
type objects struct {
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	pdbs        []*policyv1.PodDisruptionBudget
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
}

// render runs kustomize on dir and decodes every object it makes.
func render(t *testing.T, dir string) *objects {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	objs := &objects{configMaps: map[string]*corev1.ConfigMap{}}
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		objs.add(t, y)
	}
	return objs
}

// add decodes one object strictly into its API type: a field the type does
// not have, a duplicate field or a kind we do not expect fails.
func (o *objects) add(t *testing.T, y []byte) {
	t.Helper()
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(y, &tm); err != nil {
		t.Fatal(err)
	}
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		o.deployments = append(o.deployments, decodeStrict[appsv1.Deployment](t, y))
	case "v1 Service":
		o.services = append(o.services, decodeStrict[corev1.Service](t, y))
	case "v1 ConfigMap":
		c := decodeStrict[corev1.ConfigMap](t, y)
		o.configMaps[c.Name] = c
	case "policy/v1 PodDisruptionBudget":
		o.pdbs = append(o.pdbs, decodeStrict[policyv1.PodDisruptionBudget](t, y))
	case "autoscaling/v2 HorizontalPodAutoscaler":
		o.hpas = append(o.hpas, decodeStrict[autoscalingv2.HorizontalPodAutoscaler](t, y))
	default:
		t.Fatalf("unexpected object %s %s", tm.APIVersion, tm.Kind)
	}
}

// decodeStrict decodes y into a new T; unknown or duplicate fields fail.
func decodeStrict[T any](t *testing.T, y []byte) *T {
	t.Helper()
	v := new(T)
	if err := yaml.UnmarshalStrict(y, v); err != nil {
		t.Fatalf("%T: %v\n%s", v, err, y)
	}
	return v
}

// TestStrictDecoding: a misspelt field fails, so the checks below see
// every field the manifests set.
func TestStrictDecoding(t *testing.T) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), "base")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rm.Resources() {
		if r.GetKind() != "Deployment" {
			continue
		}
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		bad := strings.Replace(string(y), "terminationGracePeriodSeconds:", "terminationGracePeriod:", 1)
		if bad == string(y) {
			t.Fatal("no terminationGracePeriodSeconds to misspell")
		}
		if err := yaml.UnmarshalStrict([]byte(bad), &appsv1.Deployment{}); err == nil {
			t.Fatal("a misspelt field was accepted")
		}
		return
	}
	t.Fatal("no Deployment in the base")
}

func TestManifests(t *testing.T) {
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			objs := render(t, dir)
			if len(objs.deployments) != 1 || len(objs.services) != 1 || len(objs.pdbs) != 1 {
				t.Fatalf("want one Deployment, Service and PodDisruptionBudget; got %d, %d, %d",
					len(objs.deployments), len(objs.services), len(objs.pdbs))
			}
			d := objs.deployments[0]
			checkDeployment(t, d, objs)
			checkService(t, objs.services[0], d)
			checkPDB(t, objs.pdbs[0], d)
			for _, h := range objs.hpas {
				checkHPA(t, h, d)
			}
		})
	}
}

func checkDeployment(t *testing.T, d *appsv1.Deployment, objs *objects) {
	t.Helper()
	ru := d.Spec.Strategy.RollingUpdate
	if ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling updates must not drop capacity: maxUnavailable 0, got %+v", ru)
	}
	if d.Spec.Selector == nil || len(d.Spec.Selector.MatchLabels) == 0 {
		t.Fatal("the Deployment selects no labels")
	}
	if !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("selector %v does not match the pod labels %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	}
	pod := &d.Spec.Template.Spec
	checkPodSecurity(t, pod)
	if len(pod.InitContainers) != 0 || len(pod.Containers) != 1 {
		t.Fatalf("want the echo container alone, got %d containers, %d init", len(pod.Containers), len(pod.InitContainers))
	}
	c := &pod.Containers[0]
	if len(c.Command) != 0 || !strings.HasPrefix(c.Image, "hioload-ws") {
		t.Errorf("the container must run the runtime image's entrypoint (/echo): image %q command %v", c.Image, c.Command)
	}
	checkGuaranteed(t, c)
	checkContainerSecurity(t, c)
	report, admin := checkArgs(t, c, pod, objs)
	checkHugePages(t, c, report)
	grace := pod.TerminationGracePeriodSeconds
	need := report.DrainDelaySeconds + report.ShutdownTimeoutSeconds
	if grace == nil || float64(*grace) < need {
		got := "unset (30)"
		if grace != nil {
			got = strconv.FormatInt(*grace, 10)
		}
		t.Errorf("terminationGracePeriodSeconds %s is shorter than -drain-delay + -shutdown-timeout = %gs: the kubelet would kill echo mid-shutdown", got, need)
	}
	checkProbes(t, c, report, admin)
	if len(objs.hpas) > 0 && d.Spec.Replicas != nil {
		t.Error("with an HPA the Deployment must leave replicas to it")
	}
}

// checkGuaranteed: requests equal limits for every resource, CPU and
// memory set, and the CPU count whole: what the static CPU Manager needs
// to give the container exclusive cores.
func checkGuaranteed(t *testing.T, c *corev1.Container) {
	t.Helper()
	req, lim := c.Resources.Requests, c.Resources.Limits
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := lim[name]; !ok {
			t.Errorf("no %s limit: not Guaranteed QoS", name)
		}
	}
	if len(req) != len(lim) {
		t.Errorf("requests %v and limits %v name different resources", req, lim)
	}
	for name, l := range lim {
		if r, ok := req[name]; !ok || r.Cmp(l) != 0 {
			t.Errorf("%s: request %v, limit %v; Guaranteed QoS needs them equal", name, req[name], l.String())
		}
	}
	cpu := lim[corev1.ResourceCPU]
	if cpu.MilliValue() < 1000 || cpu.MilliValue()%1000 != 0 {
		t.Errorf("cpu %s: the static CPU Manager gives exclusive cores only to whole CPUs", cpu.String())
	}
}

func checkPodSecurity(t *testing.T, pod *corev1.PodSpec) {
	t.Helper()
	sc := pod.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("the pod must set runAsNonRoot")
	}
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Error("the pod must name a non-root runAsUser (the image's 65532)")
	}
	if sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("the pod must run under the runtime's default seccomp profile")
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Error("no host namespaces")
	}
}

// checkContainerSecurity: read-only root, no escalation, no privilege, no
// capability beyond SYS_NICE (which only lets the default seccomp profile
// admit the pools' mbind and get_mempolicy).
func checkContainerSecurity(t *testing.T, c *corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("no container securityContext")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("the root filesystem must be read-only")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation must be false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("no privileged container")
	}
	if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		t.Error("the container must not run as root")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Error("drop every capability")
	} else {
		for _, c := range sc.Capabilities.Add {
			if c != "SYS_NICE" {
				t.Errorf("capability %s: the pools need none but SYS_NICE (and that only for seccomp)", c)
			}
		}
	}
}

// checkReport is the part of `echo -check -json` these checks read.
type checkReport struct {
	Addr                   string  `json:"addr"`
	Admin                  string  `json:"admin"`
	Hugepages              bool    `json:"hugepages"`
	PoolBytes              int64   `json:"pool_bytes_per_node"`
	MemoryLimit            int64   `json:"memory_limit_bytes"`
	MaxHeap                int64   `json:"max_heap_bytes"`
	DrainDelaySeconds      float64 `json:"drain_delay_seconds"`
	ShutdownTimeoutSeconds float64 `json:"shutdown_timeout_seconds"`
	Config                 string  `json:"config"`
}

// checkArgs gives the container's arguments to echo's own parser (-check):
// they must be accepted, with the ConfigMap's file in place of the mounted
// one and the container's memory limit as echo's. It returns echo's report
// and the arguments to run it with locally.
func checkArgs(t *testing.T, c *corev1.Container, pod *corev1.PodSpec, objs *objects) (checkReport, []string) {
	t.Helper()
	args := slices.Clone(c.Args)
	if path, ok := flagValue(args, "config"); ok {
		local := configFile(t, path, c, pod, objs)
		args = setFlag(args, "config", local)
	}
	mem := c.Resources.Limits[corev1.ResourceMemory]
	argv := append(slices.Clone(args), "-memory-limit="+strconv.FormatInt(mem.Value(), 10), "-check", "-json")
	out, err := exec.Command(echoBin, argv...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("echo refuses the container's arguments %q: %v\n%s", c.Args, err, stderr)
	}
	var r checkReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("echo -check -json: %v\n%s", err, out)
	}
	if r.Admin == "" {
		t.Fatal("no -metrics address: the probes have nowhere to go")
	}
	return r, args
}

// configFile checks that the -config path is a key of a ConfigMap mounted
// as a directory (a subPath mount never sees updates), and writes that key
// to a local file.
func configFile(t *testing.T, path string, c *corev1.Container, pod *corev1.PodSpec, objs *objects) string {
	t.Helper()
	for _, m := range c.VolumeMounts {
		key, ok := strings.CutPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		if m.SubPath != "" || m.SubPathExpr != "" {
			t.Errorf("volume %s is mounted with a subPath: ConfigMap updates would never reach echo", m.Name)
		}
		for _, v := range pod.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			cm, ok := objs.configMaps[v.ConfigMap.Name]
			if !ok {
				t.Fatalf("ConfigMap %s is not in the rendering", v.ConfigMap.Name)
			}
			data, ok := cm.Data[key]
			if !ok {
				t.Fatalf("-config %s: ConfigMap %s has no key %q", path, cm.Name, key)
			}
			local := filepath.Join(t.TempDir(), key)
			if err := os.WriteFile(local, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
			return local
		}
	}
	t.Fatalf("-config %s is not in a mounted ConfigMap", path)
	return ""
}

// checkHugePages: with huge pages on (echo's default), the pod requests
// whole 2 MiB pages enough for one buffer pool: the Topology Manager's
// single-numa-node policy keeps the pod on one node, and echo maps one
// pool per node its loops use.
func checkHugePages(t *testing.T, c *corev1.Container, r checkReport) {
	t.Helper()
	hp, ok := c.Resources.Limits["hugepages-2Mi"]
	if !r.Hugepages {
		return
	}
	if !ok {
		t.Fatal("echo runs with -hugepages but the pod requests no hugepages-2Mi: the pools would fall back to THP")
	}
	if hp.Value()%(2<<20) != 0 {
		t.Errorf("hugepages-2Mi %s is not whole 2 MiB pages", hp.String())
	}
	if hp.Value() < r.PoolBytes {
		t.Errorf("hugepages-2Mi %s is less than one buffer pool (%d bytes, echo -check says)", hp.String(), r.PoolBytes)
	}
}

// containerPort returns the port number a probe or Service port names.
func containerPort(t *testing.T, c *corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	t.Fatalf("no container port named %q", p.StrVal)
	return 0
}

func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return int32(n)
}

// checkProbes: readiness asks /readyz and liveness /healthz on the admin
// port, the container ports are echo's -addr and -metrics ports, and a
// local echo run with the same arguments answers those paths with 200.
func checkProbes(t *testing.T, c *corev1.Container, r checkReport, args []string) {
	t.Helper()
	adminPort := portOf(t, r.Admin)
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no %s httpGet probe", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || containerPort(t, c, p.probe.HTTPGet.Port) != adminPort {
			t.Errorf("%s probe asks %s on port %v; echo serves %s on %d", p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path, adminPort)
		}
	}
	if c.StartupProbe != nil && (c.StartupProbe.HTTPGet == nil || containerPort(t, c, c.StartupProbe.HTTPGet.Port) != adminPort) {
		t.Error("the startup probe must ask the admin port")
	}
	ports := map[int32]bool{}
	for _, cp := range c.Ports {
		ports[cp.ContainerPort] = true
	}
	if !ports[portOf(t, r.Addr)] || !ports[adminPort] {
		t.Errorf("container ports %v must include -addr %s and -metrics %s", c.Ports, r.Addr, r.Admin)
	}

	// The same arguments, on loopback ports: the paths answer.
	local := setFlag(setFlag(args, "addr", "127.0.0.1:0"), "metrics", "127.0.0.1:0")
	base := runEcho(t, local)
	for _, path := range []string{c.ReadinessProbe.HTTPGet.Path, c.LivenessProbe.HTTPGet.Path, "/metrics"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", path, resp.Status)
		}
		if path == "/metrics" && !strings.Contains(string(body), "\nhioload_connections ") {
			t.Error("/metrics has no hioload_connections, which the HPA scales on")
		}
	}
}

// runEcho starts echo with args (loopback addresses) and returns the
// admin base URL; the cleanup cuts the drain short and expects exit 0.
func runEcho(t *testing.T, args []string) string {
	t.Helper()
	cmd := exec.Command(echoBin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		time.Sleep(100 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGINT) // a second signal ends the drain delay
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("echo exited with %v", err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Error("echo did not stop")
		}
	})
	lines := make(chan string, 2)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		done <- cmd.Wait()
	}()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("echo exited before printing its admin address")
			}
			if u, ok := strings.CutPrefix(l, "echo: metrics on "); ok {
				go func() { // keep draining stdout
					for range lines {
					}
				}()
				return strings.TrimSuffix(u, "/metrics")
			}
		case <-deadline:
			t.Fatal("echo did not start")
		}
	}
}

func checkService(t *testing.T, s *corev1.Service, d *appsv1.Deployment) {
	t.Helper()
	if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("Service selector %v does not select the pods %v", s.Spec.Selector, d.Spec.Template.Labels)
	}
	c := &d.Spec.Template.Spec.Containers[0]
	ws, _ := flagValue(c.Args, "addr")
	for _, p := range s.Spec.Ports {
		if got := containerPort(t, c, p.TargetPort); got != portOf(t, ws) {
			t.Errorf("Service port %s targets %d; echo listens on %s", p.Name, got, ws)
		}
	}
}

func checkPDB(t *testing.T, p *policyv1.PodDisruptionBudget, d *appsv1.Deployment) {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("PodDisruptionBudget selector %v does not select the pods (%v)", p.Spec.Selector, err)
	}
	if p.Spec.MaxUnavailable == nil && p.Spec.MinAvailable == nil {
		t.Error("the PodDisruptionBudget bounds nothing")
	}
}

func checkHPA(t *testing.T, h *autoscalingv2.HorizontalPodAutoscaler, d *appsv1.Deployment) {
	t.Helper()
	ref := h.Spec.ScaleTargetRef
	if ref.Kind != "Deployment" || ref.Name != d.Name || ref.APIVersion != "apps/v1" {
		t.Errorf("the HPA scales %+v, not the Deployment %s", ref, d.Name)
	}
	if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 {
		t.Error("keep at least two pods: a rollout or a drain must leave one serving")
	}
	for _, m := range h.Spec.Metrics {
		if m.Type != autoscalingv2.PodsMetricSourceType || m.Pods == nil {
			t.Errorf("metric %+v: want pods/hioload_connections", m)
			continue
		}
		if m.Pods.Metric.Name != adapterMetric(t) {
			t.Errorf("the HPA asks for %s, the Prometheus adapter serves %s", m.Pods.Metric.Name, adapterMetric(t))
		}
		if m.Pods.Target.AverageValue == nil || m.Pods.Target.AverageValue.Cmp(resource.MustParse("1")) < 0 {
			t.Error("no per-pod target")
		}
	}
	if b := h.Spec.Behavior; b == nil || b.ScaleDown == nil || b.ScaleDown.StabilizationWindowSeconds == nil || *b.ScaleDown.StabilizationWindowSeconds < 300 {
		t.Error("scale down slowly: every removed pod sends its clients away")
	}
}

// adapterValues is the part of the prometheus-community/prometheus-adapter
// chart's values that the rule file sets, as the adapter documents its
// rule format (docs/config.md there); unknown fields fail. The adapter's
// own config package is not on the module proxy.
type adapterValues struct {
	Prometheus struct {
		URL  string `json:"url"`
		Port int    `json:"port"`
	} `json:"prometheus"`
	Rules struct {
		Default bool `json:"default"`
		Custom  []struct {
			SeriesQuery string `json:"seriesQuery"`
			Resources   struct {
				Overrides map[string]struct {
					Resource string `json:"resource"`
				} `json:"overrides"`
			} `json:"resources"`
			Name struct {
				Matches string `json:"matches"`
				As      string `json:"as"`
			} `json:"name"`
			MetricsQuery string `json:"metricsQuery"`
		} `json:"custom"`
	} `json:"rules"`
}

// adapterMetric reads the adapter values and returns the one metric they
// serve, checking that it maps echo's gauge to pods.
func adapterMetric(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("overlays/autoscale/prometheus-adapter-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var v adapterValues
	if err := yaml.UnmarshalStrict(b, &v); err != nil {
		t.Fatalf("prometheus-adapter-values.yaml: %v", err)
	}
	if len(v.Rules.Custom) != 1 {
		t.Fatalf("want one adapter rule, got %d", len(v.Rules.Custom))
	}
	r := v.Rules.Custom[0]
	if !strings.HasPrefix(r.SeriesQuery, "hioload_connections{") || r.Resources.Overrides["pod"].Resource != "pod" ||
		r.Resources.Overrides["namespace"].Resource != "namespace" || !strings.Contains(r.MetricsQuery, "<<.Series>>") {
		t.Errorf("the adapter rule does not map hioload_connections to pods: %+v", r)
	}
	return r.Name.As
}

// flagValue returns the value of -name in args ("-name=v", "--name=v",
// "-name v").
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// setFlag returns args with -name set to v.
func setFlag(args []string, name, v string) []string {
	out := make([]string, 0, len(args)+1)
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		if a == name && i+1 < len(args) {
			i++
			continue
		}
		if strings.HasPrefix(a, name+"=") {
			continue
		}
		out = append(out, args[i])
	}
	return append(out, "-"+name+"="+v)
}
