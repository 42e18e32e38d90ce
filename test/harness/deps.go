package harness

// Browser tests drive Chromium through chromedp; keep the module required.
import _ "github.com/chromedp/chromedp"
