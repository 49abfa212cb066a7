package console

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's Chromium, which the browser tests drive.
const chromiumPath = "/usr/bin/chromium"

// shared is the one Chromium the package's tests share, started by the
// first test that needs it and stopped by TestMain; each test opens its
// own browser context in it (cookies and storage of its own).
var shared struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.cancel != nil {
		shared.cancel()
	}
	os.Exit(code)
}

// startChromium starts the shared Chromium, headless, with a fresh
// profile that the allocator deletes when it stops.
func startChromium() {
	dir, err := os.MkdirTemp("", "switchyard-chromium-")
	if err != nil {
		shared.err = err
		return
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(dir),
	)
	ctx, cancelBrowser := chromedp.NewContext(alloc)
	shared.ctx = ctx
	shared.cancel = func() {
		cancelBrowser()
		cancelAlloc()
		_ = os.RemoveAll(dir)
	}
	// The first run starts the browser; it may take a few seconds on a
	// busy machine.
	shared.err = chromedp.Do(ctx)
}

// tab is one browser tab on a site, in a browser context of its own.
type tab struct {
	t    *testing.T
	site *site
	ctx  context.Context
}

// tabTimeout bounds everything one test does in its tab.
const tabTimeout = 90 * time.Second

// newTab opens a tab on s, at 1280×800. A test needing the browser skips
// when Chromium is absent, unless SWITCHYARD_REQUIRE_BROWSER=1 says it
// must run.
func newTab(t *testing.T, s *site) *tab {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if browserRequired() {
			t.Fatalf("SWITCHYARD_REQUIRE_BROWSER=1 but Chromium is missing (%v): apt-get install -y chromium", err)
		}
		t.Skipf("Chromium is not installed at %s (apt-get install -y chromium); skipping the browser tests", chromiumPath)
	}
	shared.once.Do(startChromium)
	if shared.err != nil {
		t.Fatalf("start Chromium: %v", shared.err)
	}
	ctx, cancel := chromedp.NewContext(shared.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, tabTimeout)
	t.Cleanup(cancelTimeout)
	b := &tab{t: t, site: s, ctx: ctx}
	b.do(chromedp.EmulateViewport(1280, 800))
	return b
}

// do runs actions, failing the test on the first error.
func (b *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.fail(err)
	}
}

// fail ends the test with err and what the page showed.
func (b *tab) fail(err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.ctx), 2*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	b.t.Fatalf("%v\nat %s the page says:\n%s", err, loc, text)
}

// open navigates to path of the site.
func (b *tab) open(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.site.url + path))
}

// text returns the text of the first element sel matches, once it is
// visible.
func (b *tab) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		b.fail(fmt.Errorf("read %s: %w", sel, err))
	}
	return strings.TrimSpace(s)
}

// eval evaluates a JavaScript expression in the page.
func (b *tab) eval(expr string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.fail(fmt.Errorf("evaluate %s: %w", expr, err))
	}
	return s
}

// waitText waits until the element sel matches holds want, within
// timeout. It asks the page every few milliseconds; a question the page
// could not answer because it was navigating is asked again.
func (b *tab) waitText(sel, want string, timeout time.Duration) {
	b.t.Helper()
	expr := fmt.Sprintf(`(() => { const el = document.querySelector(%q); return !!el && el.textContent.includes(%q); })()`, sel, want)
	deadline := time.Now().Add(timeout)
	for {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](expr))
		switch {
		case ok:
			return
		case time.Now().After(deadline):
			b.fail(fmt.Errorf("%s does not say %q after %v (last error: %v)", sel, want, timeout, err))
		case b.ctx.Err() != nil:
			b.fail(b.ctx.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signIn signs in with secret from the sign-in page.
func (b *tab) signIn(secret string) {
	b.t.Helper()
	b.open("/console/system")
	b.do(
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), secret),
		chromedp.Click(chromedp.CSS("form[action='/console/sign-in'] button")),
		chromedp.WaitVisible(chromedp.CSS("#switches")),
	)
}

// confirm fills the open confirmation dialog, as fill does, and applies
// it.
func (b *tab) confirm(phrase, reason string) {
	b.t.Helper()
	b.fill(phrase, reason)
	b.apply()
}

// fill types into the open confirmation dialog the phrase it asks for, or
// phrase when set, and reason.
func (b *tab) fill(phrase, reason string) {
	b.t.Helper()
	b.do(chromedp.WaitVisible(chromedp.CSS("dialog[open] #phrase")))
	if phrase == "" {
		phrase = b.text("dialog[open] .phrase")
	}
	b.do(
		chromedp.SendKeys(chromedp.CSS("dialog[open] #phrase"), phrase),
		chromedp.SendKeys(chromedp.CSS("dialog[open] #reason"), reason),
	)
}

// apply clicks the open confirmation dialog's Apply.
func (b *tab) apply() {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.CSS("dialog[open] button.primary")))
}

// screenshot saves the viewport as docs/console-<name>.png when
// SWITCHYARD_SCREENSHOTS names the directory to write them to (the
// README's screenshots are made so).
func (b *tab) screenshot(name string) {
	b.t.Helper()
	dir := os.Getenv("SWITCHYARD_SCREENSHOTS")
	if dir == "" {
		return
	}
	shot, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.fail(fmt.Errorf("screenshot %s: %w", name, err))
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		b.t.Fatal(err)
	}
	var out bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&out, paletted(img)); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "console-"+name+".png"), out.Bytes(), 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// paletted redraws img in its 256 most frequent colors, which keeps a
// screenshot of flat pages sharp at a third of its size.
func paletted(img image.Image) *image.Paletted {
	counts := map[color.RGBA]int{}
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			counts[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)]++
		}
	}
	// The most frequent first; equally frequent colors in a fixed order,
	// so the same page always makes the same file.
	colors := slices.SortedFunc(maps.Keys(counts), func(a, b color.RGBA) int {
		if n := counts[b] - counts[a]; n != 0 {
			return n
		}
		return cmp.Compare(uint32(a.R)<<24|uint32(a.G)<<16|uint32(a.B)<<8|uint32(a.A), uint32(b.R)<<24|uint32(b.G)<<16|uint32(b.B)<<8|uint32(b.A))
	})
	var p color.Palette
	for _, c := range colors[:min(len(colors), 256)] {
		p = append(p, c)
	}
	out := image.NewPaletted(r, p)
	draw.Draw(out, r, img, r.Min, draw.Src)
	return out
}
