#!/usr/bin/env python3
"""Screenshots of what a maintainer reads, at GitHub's 914 px comment column, in headless Chromium:

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--chromium chromium]

Runs the offline demo (`autoresearch-bot demo --serve`: sandbox GitHub, bot, real benchmarks of
examples/attention), then for the draft PR (its body), the issue's status comment, the benchmark check
run's page (the sandbox's view) and the bot's run page:

1. checks the layout in Chromium itself: the page's HTML (fetched here) is loaded from a file with a
   `<base>` back to the server and a measuring script appended; `chromium --headless --dump-dom` prints
   the DOM after the script ran. With every `<details>` opened, no horizontal scroll: the document's
   scrollWidth and each table's are at most their width. Every number in a figures table has its unit
   (a range or a ratio shares one: `1.03–1.26×`, `1/1 checks`; p-values are unitless);
2. takes the screenshot (`chromium --headless --screenshot`, 914 px wide) into --out.

Exits non-zero, naming the page and what is wrong, when a check fails or the demo does not finish.
Needs the Debian package `chromium` (apt-get install -y chromium fonts-liberation fonts-noto-color-emoji).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 914
MARK = "__screenshot_measure__"

# run in the page once loaded: opens every <details>, then measures; the result lands in the DOM as JSON
MEASURE_JS = r"""
window.addEventListener('load', () => {
  document.querySelectorAll('details').forEach(d => d.open = true);
  const vw = document.documentElement.clientWidth;
  const out = {viewport: vw, scrollWidth: document.documentElement.scrollWidth, wide: [], cells: []};
  document.querySelectorAll('table, pre:not(.log), svg').forEach((el, i) => {
    if (el.tagName.toLowerCase() === 'pre' && el.closest('details')) return;  // logs scroll on GitHub too
    const r = el.getBoundingClientRect();
    const sw = el.tagName.toLowerCase() === 'svg' ? r.width : el.scrollWidth;
    if (r.right > vw + 0.5 || sw > el.clientWidth + 1 && el.tagName.toLowerCase() === 'table')
      out.wide.push({tag: el.tagName, index: i, right: r.right, scrollWidth: sw, clientWidth: el.clientWidth,
                     text: el.textContent.slice(0, 80)});
  });
  document.querySelectorAll('.markdown-body table').forEach(t => {
    const heads = [...t.querySelectorAll('thead th')].map(th => th.textContent.trim());
    t.querySelectorAll('tbody tr').forEach(tr => {
      [...tr.children].forEach((td, j) => {
        const c = td.cloneNode(true);
        c.querySelectorAll('code').forEach(x => x.remove());  // names, not figures
        out.cells.push({head: heads[j] || '', text: c.textContent.trim()});
      });
    });
  });
  const pre = document.createElement('pre');
  pre.id = '__MARK__';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
""".replace("__MARK__", MARK)

# columns of names, references and prose, not figures (a dossier's `#` and `sources` are footnote numbers)
NAME_COLUMNS = {
    "candidate",
    "arch",
    "metric",
    "idea",
    "source",
    "sources",
    "function",
    "verdict",
    "kind",
    "#",
}
NAME_COLUMNS |= {"message", "hypothesis", "title", "paper", "fork"}
UNIT = r"(?:×|%|ms|µs|us|ns|s|cycles|instructions|tokens/s|B|checks|pairs|\$)"


def numbers_without_units(text: str, head: str = "") -> list[str]:
    """The figures in one cell that carry no unit (see the module docstring); a column whose header names
    the unit (`estimated cycles`, `time (ms)`) gives it to every cell."""
    if re.search(r"(?<!\w)" + UNIT + r"(?!\w)", head):
        return []
    text = re.sub(r"\bp [=<] [\d.]+", "", text)
    bad = []
    for m in re.finditer(
        r"(?<![A-Za-z_\d.$,])\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![A-Za-z_\d.$,])\d+(?:\.\d+)?(?![\d.,])", text
    ):
        rest = text[m.end() :]
        if not (re.match(r"\s?[kMG]?\s?" + UNIT, rest) or re.match(r"[–/]\d", rest)):
            bad.append(m.group())
    return bad


def chromium_cmd(chromium: str, *args: str) -> list[str]:
    return [
        chromium,
        "--headless",
        "--no-sandbox",  # root in a container: Chromium's own sandbox needs user namespaces
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--force-device-scale-factor=1",
        *args,
    ]


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.read().decode()


def measure(chromium: str, url: str, work: Path) -> dict:
    page = fetch(url)
    base = f'<base href="{html.escape(url)}">'
    page = page.replace("<head>", "<head>" + base, 1) if "<head>" in page else base + page
    page = page.replace("</body>", f"<script>{MEASURE_JS}</script></body>")
    f = work / "measure.html"
    f.write_text(page)
    proc = subprocess.run(
        chromium_cmd(
            chromium, f"--window-size={WIDTH},1200", "--virtual-time-budget=5000", "--dump-dom", f.as_uri()
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    m = re.search(rf'<pre id="{MARK}">(.*?)</pre>', proc.stdout, re.S)
    if not m:
        raise SystemExit(f"chromium printed no measurement for {url}: {proc.stderr[-800:]}")
    return json.loads(html.unescape(m.group(1)))


ISOLATE_JS = """
document.querySelectorAll('.box').forEach(b => { if (b.id !== '__KEEP__') b.remove(); });
document.querySelectorAll('body > h2, body > ul').forEach(e => e.remove());
"""


def screenshot(chromium: str, url: str, out: Path, height: int, work: Path, keep: str | None = None) -> None:
    """`keep`: the id of the one comment box to show (the others removed), as if scrolled to it."""
    if keep:
        page = fetch(url).replace("<head>", f'<head><base href="{html.escape(url)}">', 1)
        page = page.replace("</body>", f"<script>{ISOLATE_JS.replace('__KEEP__', keep)}</script></body>")
        f = work / "shot.html"
        f.write_text(page)
        url = f.as_uri()
    subprocess.run(
        chromium_cmd(
            chromium,
            f"--window-size={WIDTH},{height}",
            "--virtual-time-budget=3000",
            f"--screenshot={out}",
            url,
        ),
        capture_output=True,
        timeout=120,
        check=True,
    )
    if not out.exists():
        raise SystemExit(f"chromium wrote no screenshot of {url}")


def check(name: str, m: dict) -> list[str]:
    problems = []
    if m["scrollWidth"] > m["viewport"]:
        problems.append(f"{name}: the page scrolls sideways ({m['scrollWidth']} px > {m['viewport']} px)")
    for w in m["wide"]:
        problems.append(f"{name}: a {w['tag']} is wider than the column: {w}")
    for c in m["cells"]:
        if re.split(r"[\s(:]", c["head"].strip("`").lower())[0] in NAME_COLUMNS:  # `hypothesis (kind, risk)`
            continue
        bad = numbers_without_units(c["text"], c["head"])
        if bad:
            problems.append(f"{name}: {bad} without a unit in the {c['head']!r} cell {c['text']!r}")
    return problems


def start_demo(work: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "demo", "--serve", "--workdir", str(work / "demo")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "AUTORESEARCH_DEMO_TIMEOUT": os.environ.get("AUTORESEARCH_DEMO_TIMEOUT", "1800")},
    )
    urls: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        print("demo| " + line.rstrip(), flush=True)
        m = re.match(r"\s*(issue \(sandbox web view\)|draft PR|bot status page):\s+(\S+)", line)
        if m:
            urls[m.group(1).split()[0]] = m.group(2)
        if line.startswith("serving;"):
            return proc, urls
    raise SystemExit(f"the demo ended (exit {proc.wait()}) before serving its pages")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--chromium", default="chromium")
    args = ap.parse_args(argv)
    chromium = shutil.which(args.chromium)
    if not chromium:
        print(f"{args.chromium} not found: apt-get install -y chromium (the Debian package)", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp:
        work = Path(tmp)
        proc, urls = start_demo(work)
        try:
            if not {"issue", "draft", "bot"} <= set(urls):
                raise SystemExit(f"the demo printed no issue, PR or run page URL: {urls}")
            pr_page = fetch(urls["draft"])
            checks = re.findall(r'href="(/[^"]+/runs/\d+)">autoresearch / benchmark<', pr_page)
            if not checks:
                raise SystemExit("the draft PR's page links no benchmark check run")
            sandbox = re.match(r"https?://[^/]+", urls["draft"]).group(0)
            issue_page = fetch(urls["issue"])
            status = re.findall(
                r'id="(issuecomment-\d+)">\s*<p class="meta">[^<]*</p>\s*<div class="markdown-body">\s*'
                r"<h2>autoresearch run",
                issue_page,
            )
            pages = {
                "pr-body": (urls["draft"], 1800),
                "status-comment": (urls["issue"] + (f"#{status[-1]}" if status else ""), 1600),
                "check-run": (sandbox + checks[0], 1400),
                "run-page": (urls["bot"], 1800),
            }
            problems: list[str] = []
            for name, (url, height) in pages.items():
                m = measure(chromium, url.split("#")[0], work)
                found = check(name, m)
                print(f"{name}: scrollWidth {m['scrollWidth']} / {m['viewport']} px, {len(m['cells'])} "
                      f"table cells, {len(found)} problem(s)")  # fmt: skip
                problems += found
                png = out / f"{name}.png"
                page_url, _, keep = url.partition("#")
                screenshot(chromium, page_url, png, height, work, keep or None)
                print(f"  {png} ({png.stat().st_size // 1024} KiB)")
            for p in problems:
                print("FAIL " + p, file=sys.stderr)
            return 1 if problems else 0
        finally:
            try:
                os.killpg(proc.pid, signal.SIGINT)
                proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                proc.kill()
            time.sleep(0.2)


if __name__ == "__main__":
    raise SystemExit(main())
