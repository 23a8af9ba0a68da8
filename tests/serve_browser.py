"""Drives `spatialsv serve` in a real browser (Chromium through Playwright): the page loads
without console errors, a frame's colour and pseudo-label images render, the 3D view draws a
canvas with points, a SQL query returns the expected rows and a bad one shows its error.

Usage: python3 tests/serve_browser.py URL QUERY EXPECTED_ROWS
Prints `ok ...` and exits 0, or names the first problem and exits 1.
Needs: pip install playwright, and Chromium (Debian: apt-get install chromium; or
CHROMIUM=/path/to/chrome).
"""
import os
import shutil
import sys

from playwright.sync_api import sync_playwright


def main() -> int:
    url, query, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
    exe = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        print("no chromium on PATH (apt-get install chromium, or set CHROMIUM)")
        return 1
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=exe,
            args=["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        page.goto(url)
        page.wait_for_function("window.spatialsv && window.spatialsv.ready", timeout=120_000)
        if errors:
            print("errors while loading: " + "; ".join(errors))
            return 1
        images = page.evaluate(
            """() => [...document.querySelectorAll('.frame img')].map(i => [i.alt, i.complete && i.naturalWidth > 0])"""
        )
        kinds = {alt for alt, ok in images if ok}
        for want in ["colour", "pseudo depth", "confidence", "keep"]:
            if want not in kinds:
                print(f"no rendered '{want}' image among the frames: {images[:8]}")
                return 1
        if any(not ok for _, ok in images):
            print(f"images that did not render: {[a for a, ok in images if not ok][:8]}")
            return 1
        page.click("nav a[data-page=view3d]")
        page.wait_for_timeout(800)
        points = page.evaluate("window.spatialsv.points")
        drawn = page.evaluate(
            """() => { const c = document.querySelector('#view3d canvas'); if (!c) return -1;
                 const t = document.createElement('canvas'); t.width = c.width; t.height = c.height;
                 const g = t.getContext('2d'); g.drawImage(c, 0, 0);
                 const d = g.getImageData(0, 0, t.width, t.height).data; let n = 0;
                 for (let i = 0; i < d.length; i += 4) if (d[i] < 245 || d[i + 1] < 245 || d[i + 2] < 245) n++;
                 return n; }"""
        )
        if points <= 0 or drawn < 100:
            print(f"3D view: {points} points loaded, {drawn} drawn pixels")
            return 1
        page.click("nav a[data-page=sql]")
        page.fill("#sqlbox", query)
        page.click("#sqlrun")
        page.wait_for_function("window.spatialsv.sqlRows !== -1", timeout=30_000)
        rows = page.evaluate("window.spatialsv.sqlRows")
        if rows != expected:
            print(f"SQL {query!r}: {rows} rows shown, expected {expected}: {page.inner_text('#sqlout')[:400]}")
            return 1
        page.evaluate("window.spatialsv.sqlRows = -1")
        page.fill("#sqlbox", "SELECT nope FROM frames")
        page.click("#sqlrun")
        page.wait_for_function("window.spatialsv.sqlRows !== -1", timeout=30_000)
        err = page.inner_text("#sqlout")
        if "nope" not in err:
            print(f"a bad query shows no error naming the column: {err[:300]}")
            return 1
        # The bad query's error is shown, not thrown: it must not count as a page error.
        errors = [e for e in errors if "400" not in e]
        if errors:
            print("errors: " + "; ".join(errors))
            return 1
        browser.close()
    print(f"ok {len(images)} frame images, {points} points ({drawn} pixels drawn), {rows} SQL rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
