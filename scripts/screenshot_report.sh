#!/usr/bin/env bash
# Render a report in a real browser (headless Chromium) and save a screenshot: a check that the page loads,
# its images resolve and its tables lay out. Debian: `apt-get update && apt-get install -y chromium`.
#
#   bash scripts/screenshot_report.sh [REPORT_HTML] [OUT_PNG]
#   (defaults: runs/demo/report.html and report.png beside it)
#
# Exits 0 with a message (and no screenshot) where Chromium is not installed.
set -euo pipefail
report="${1:-runs/demo/report.html}"
out="${2:-$(dirname "$report")/report.png}"
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [ -z "$browser" ]; then
  echo "screenshot_report: no Chromium found; skipped (install it with: apt-get update && apt-get install -y chromium)"
  exit 0
fi
if [ ! -f "$report" ]; then
  echo "screenshot_report: $report does not exist; run 'bash scripts/demo.sh' (or spikemllm demo --out DIR) first" >&2
  exit 2
fi
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
url="file://$(cd "$(dirname "$report")" && pwd)/$(basename "$report")"
"$browser" --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
  --no-first-run --user-data-dir="$profile" --hide-scrollbars --window-size=1280,4000 \
  --screenshot="$(realpath -m "$out")" "$url" >/dev/null 2>&1
if [ ! -s "$out" ]; then
  echo "screenshot_report: Chromium wrote no screenshot for $url" >&2
  exit 1
fi
echo "screenshot_report: $url -> $out"
