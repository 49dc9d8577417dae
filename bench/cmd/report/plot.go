package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"slices"
)

// sizeScenarios are the x axis of the plot: the pipelined payload sizes.
var sizeScenarios = []string{"64B", "1KiB", "16KiB", "1MiB"}

var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xff, 0x7f, 0x0e, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
	{0x17, 0xbe, 0xcf, 0xff},
}

var (
	ourColor = color.RGBA{0xd6, 0x27, 0x28, 0xff}
	ink      = color.RGBA{0x20, 0x20, 0x20, 0xff}
	grid     = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
)

// plot draws two panels side by side, messages/s and server CPU µs per
// message against payload size, both on log scales, one line per server.
func (d *data) plot(path string) error {
	const w, h = 1400, 560
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	colors := map[string]color.RGBA{}
	i := 0
	for _, s := range d.servers {
		if s == ours {
			colors[s] = ourColor
		} else {
			colors[s] = palette[i%len(palette)]
			i++
		}
	}
	d.panel(img, image.Rect(20, 10, 600, h-10), "messages/s (100 conns x 16 in flight)",
		func(r *record) float64 { return r.MsgsPerSec }, colors)
	d.panel(img, image.Rect(620, 10, 1200, h-10), "server CPU us per message (lower = better)",
		func(r *record) float64 { return r.ServerCPUusMsg }, colors)
	// Legend.
	y := 60
	for _, s := range d.servers {
		c := colors[s]
		fillRect(img, image.Rect(1215, y+3, 1245, y+9), c)
		drawText(img, 1252, y, s, 2, ink)
		y += 28
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (d *data) panel(img *image.RGBA, r image.Rectangle, title string, value func(*record) float64, colors map[string]color.RGBA) {
	drawText(img, r.Min.X+10, r.Min.Y+5, title, 2, ink)
	plotArea := image.Rect(r.Min.X+90, r.Min.Y+40, r.Max.X-20, r.Max.Y-60)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range d.servers {
		for _, sc := range sizeScenarios {
			if v, _, ok := d.median(key{s, sc}, value); ok && v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		drawText(img, plotArea.Min.X, plotArea.Min.Y+40, "no data", 2, ink)
		return
	}
	dlo, dhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dhi == dlo {
		dhi++
	}
	yOf := func(v float64) int {
		f := (math.Log10(v) - dlo) / (dhi - dlo)
		return plotArea.Max.Y - int(f*float64(plotArea.Dy()))
	}
	xOf := func(i int) int {
		return plotArea.Min.X + 30 + i*(plotArea.Dx()-60)/(len(sizeScenarios)-1)
	}
	for e := dlo; e <= dhi; e++ {
		y := yOf(math.Pow(10, e))
		fillRect(img, image.Rect(plotArea.Min.X, y, plotArea.Max.X, y+1), grid)
		label := decade(e)
		drawText(img, plotArea.Min.X-10-textWidth(label, 2), y-7, label, 2, ink)
	}
	fillRect(img, image.Rect(plotArea.Min.X, plotArea.Min.Y, plotArea.Min.X+2, plotArea.Max.Y), ink)
	fillRect(img, image.Rect(plotArea.Min.X, plotArea.Max.Y, plotArea.Max.X, plotArea.Max.Y+2), ink)
	for i, sc := range sizeScenarios {
		x := xOf(i)
		drawText(img, x-textWidth(sc, 2)/2, plotArea.Max.Y+14, sc, 2, ink)
	}
	drawText(img, plotArea.Min.X+plotArea.Dx()/2-textWidth("payload size", 2)/2, plotArea.Max.Y+36, "payload size", 2, ink)
	servers := slices.Clone(d.servers)
	slices.Reverse(servers) // ours (first) is drawn last, on top
	for _, s := range servers {
		c := colors[s]
		px, py, have := 0, 0, false
		for i, sc := range sizeScenarios {
			v, _, ok := d.median(key{s, sc}, value)
			if !ok || v <= 0 {
				have = false
				continue
			}
			x, y := xOf(i), yOf(v)
			fillRect(img, image.Rect(x-5, y-5, x+6, y+6), c)
			if have {
				line(img, px, py, x, y, c)
			}
			px, py, have = x, y, true
		}
	}
}

// decade labels 10^e compactly: 0.01, 0.1, 1, 10, 100, 1K, 10K, … 1G.
func decade(e float64) string {
	switch {
	case e < 0:
		return fmt.Sprintf("%g", math.Pow(10, e))
	case e < 3:
		return fmt.Sprintf("%.0f", math.Pow(10, e))
	case e < 6:
		return fmt.Sprintf("%.0fK", math.Pow(10, e-3))
	case e < 9:
		return fmt.Sprintf("%.0fM", math.Pow(10, e-6))
	default:
		return fmt.Sprintf("%.0fG", math.Pow(10, e-9))
	}
}

func fillRect(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, &image.Uniform{c}, image.Point{}, draw.Src)
}

// line draws a 3-pixel-wide segment (Bresenham's algorithm).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		fillRect(img, image.Rect(x0-1, y0-1, x0+2, y0+2), c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int  { return max(v, -v) }
func sign(v int) int { return min(max(v, -1), 1) }
