package wsmetrics

import (
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hioload-ws/hioload-ws/ws"
)

// field is one exported number: a struct field with a metric tag, found by
// its index path from the struct it was read from.
type field struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	index []int
}

// fieldsOf lists the tagged fields of struct type t (embedded structs
// included), as metrics with the given labels.
func fieldsOf(t reflect.Type, labels ...string) []field {
	var out []field
	for _, f := range reflect.VisibleFields(t) {
		name, ok := f.Tag.Lookup("metric")
		if !ok {
			continue
		}
		kind := prometheus.GaugeValue
		if strings.HasSuffix(name, "_total") {
			kind = prometheus.CounterValue
		}
		out = append(out, field{
			desc:  prometheus.NewDesc("hioload_"+name, f.Tag.Get("help"), labels, nil),
			kind:  kind,
			index: f.Index,
		})
	}
	return out
}

// value reads f from v as a float: integers as they are, durations in
// seconds.
func (f field) value(v reflect.Value) float64 {
	x := v.FieldByIndex(f.index)
	switch {
	case x.Type() == reflect.TypeFor[time.Duration]():
		return time.Duration(x.Int()).Seconds()
	case x.CanInt():
		return float64(x.Int())
	default:
		return float64(x.Uint())
	}
}

// collector exports Server.Stats, the limits, the handler metrics and the
// pools as hioload_* metrics. It reads the counters at scrape time: nothing
// is added to the per-message path.
type collector struct {
	s                                *ws.Server
	server, loop, limits             []field
	closes                           *prometheus.Desc
	handlerProcessed, handlerErrors  *prometheus.Desc
	handlerLatency                   *prometheus.Desc
	poolInUse, poolCapacity, poolExh *prometheus.Desc
	poolBytes, poolHugeBytes         *prometheus.Desc
}

// NewCollector returns a prometheus.Collector of the server's metrics, all
// named hioload_*. It is cheap to scrape: one Server.Stats call.
func NewCollector(s *ws.Server) prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("hioload_"+name, help, labels, nil)
	}
	pool := []string{"node", "class", "page"}
	return &collector{
		s:                s,
		server:           fieldsOf(reflect.TypeFor[ws.Stats]()),
		loop:             fieldsOf(reflect.TypeFor[ws.LoopStats](), "loop", "cpu", "node", "io_engine"),
		limits:           fieldsOf(reflect.TypeFor[ws.Limits]()),
		closes:           d("closes_sent_total", "Close frames the server initiated, by status code (0: codes outside 1000-1015).", "code"),
		handlerProcessed: d("handler_processed_total", "Messages handled by the handler (HandlerMetrics middleware)."),
		handlerErrors:    d("handler_errors_total", "Messages whose handler returned an error (HandlerMetrics middleware)."),
		handlerLatency:   d("handler_latency_seconds", "Time in the handler per message, over a sample of one message in 16 (HandlerMetrics middleware)."),
		poolInUse:        d("pool_buffers_in_use", "Pool buffers handed out and not yet released, by NUMA node, size class (bytes) and page kind.", pool...),
		poolCapacity:     d("pool_buffers", "Pool buffers in the class.", pool...),
		poolExh:          d("pool_exhausted_total", "Gets refused because the class had no free buffer (the loop fell back to the Go heap).", pool...),
		poolBytes:        d("pool_arena_bytes", "Bytes mapped for the node's pool, by page kind (hugetlb, thp, normal).", "node", "page"),
		poolHugeBytes:    d("pool_arena_huge_bytes", "Bytes of the node's pool that huge pages back.", "node", "page"),
	}
}

// Describe sends every metric's description.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, fs := range [][]field{c.server, c.loop, c.limits} {
		for _, f := range fs {
			ch <- f.desc
		}
	}
	for _, d := range []*prometheus.Desc{c.closes, c.handlerProcessed, c.handlerErrors, c.handlerLatency,
		c.poolInUse, c.poolCapacity, c.poolExh, c.poolBytes, c.poolHugeBytes} {
		ch <- d
	}
}

// Collect reads the server's counters once and sends them.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	send(ch, c.server, reflect.ValueOf(st))
	for code, n := range st.CloseCodes {
		ch <- prometheus.MustNewConstMetric(c.closes, prometheus.CounterValue, float64(n), strconv.Itoa(int(code)))
	}
	for _, l := range st.Loops {
		send(ch, c.loop, reflect.ValueOf(l), strconv.Itoa(l.Loop), strconv.Itoa(l.CPU), strconv.Itoa(l.Node), string(l.IOEngine))
	}
	send(ch, c.limits, reflect.ValueOf(c.s.GetControl().Limits()))
	c.collectHandler(ch)
	c.collectPools(ch)
}

func send(ch chan<- prometheus.Metric, fs []field, v reflect.Value, labels ...string) {
	for _, f := range fs {
		ch <- prometheus.MustNewConstMetric(f.desc, f.kind, f.value(v), labels...)
	}
}

func (c *collector) collectHandler(ch chan<- prometheus.Metric) {
	hs := c.s.GetControl().HandlerStats()
	ch <- prometheus.MustNewConstMetric(c.handlerProcessed, prometheus.CounterValue, float64(hs.Processed))
	ch <- prometheus.MustNewConstMetric(c.handlerErrors, prometheus.CounterValue, float64(hs.Errors))
	bounds := ws.HandlerLatencyBounds()
	buckets := make(map[float64]uint64, len(bounds))
	var cum uint64
	for i, b := range bounds {
		cum += hs.Latency[i]
		buckets[b.Seconds()] = cum
	}
	ch <- prometheus.MustNewConstHistogram(c.handlerLatency, hs.Sampled, hs.LatencySum.Seconds(), buckets)
}

// collectPools sends each pool's figures: buffers in use and capacity per
// node, size class and page kind, Gets refused because a class was
// exhausted, and the arena's size and huge-page bytes.
func (c *collector) collectPools(ch chan<- prometheus.Metric) {
	for _, p := range c.s.PoolStats() {
		node := strconv.Itoa(p.Node)
		ch <- prometheus.MustNewConstMetric(c.poolBytes, prometheus.GaugeValue, float64(p.Bytes), node, p.Pages)
		ch <- prometheus.MustNewConstMetric(c.poolHugeBytes, prometheus.GaugeValue, float64(p.HugeBytes), node, p.Pages)
		for _, cl := range p.Classes {
			lv := []string{node, strconv.Itoa(cl.Size), cl.Pages}
			ch <- prometheus.MustNewConstMetric(c.poolInUse, prometheus.GaugeValue, float64(cl.InUse), lv...)
			ch <- prometheus.MustNewConstMetric(c.poolCapacity, prometheus.GaugeValue, float64(cl.Capacity), lv...)
			ch <- prometheus.MustNewConstMetric(c.poolExh, prometheus.CounterValue, float64(cl.Exhausted), lv...)
		}
	}
}
