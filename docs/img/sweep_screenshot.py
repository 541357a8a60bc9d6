"""Screenshot of `budget ui` for the README: headless Chromium driven over the DevTools protocol.

Opens the experiment's runs page, closes the assistant panel, switches to "Model training",
expands the sweep parents, collapses the sidebar and shows the metric charts, then saves a PNG.

    budget ui --port 5055 &    # in the folder holding the sweep's mlflow.db
    python docs/img/sweep_screenshot.py http://127.0.0.1:5055/#/experiments/1/runs docs/img/sweep_mlflow_ui.png

Needs `chromium` on PATH and aiohttp (installed here; not a project dependency).
"""
import asyncio, json, subprocess, sys, tempfile, time, base64
import aiohttp

PORT = 9333

async def main(url, out, script_steps):
    proc = subprocess.Popen(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={tempfile.mkdtemp()}", f"--remote-debugging-port={PORT}",
        "--window-size=1400,900", "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(50):
                try:
                    async with http.get(f"http://127.0.0.1:{PORT}/json/list") as r:
                        pages = [p for p in await r.json() if p["type"] == "page"]
                        if pages: break
                except Exception:
                    pass
                await asyncio.sleep(0.3)
            ws = await http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
            n = 0
            async def call(method, **params):
                nonlocal n
                n += 1
                await ws.send_json({"id": n, "method": method, "params": params})
                while True:
                    msg = await ws.receive_json()
                    if msg.get("id") == n:
                        return msg
            await call("Emulation.setDeviceMetricsOverride", width=1400, height=900, deviceScaleFactor=1, mobile=False)
            await call("Page.navigate", url=url)
            await asyncio.sleep(12)
            for kind, arg in script_steps:
                if kind == "js":
                    r = await call("Runtime.evaluate", expression=arg, returnByValue=True, awaitPromise=True)
                    print(json.dumps(r.get("result", {}).get("result", {}).get("value"))[:3000])
                elif kind == "sleep":
                    await asyncio.sleep(arg)
            shot = await call("Page.captureScreenshot", format="png")
            open(out, "wb").write(base64.b64decode(shot["result"]["data"]))
    finally:
        proc.terminate(); proc.wait()

STEPS = [
 [
  "js",
  "(() => { const c = Array.from(document.querySelectorAll('button')).find(b => b.getAttribute('aria-label') === 'Close'); if (c) c.click(); const t = Array.from(document.querySelectorAll('*')).filter(e => e.children.length === 0 && e.textContent.trim() === 'Model training'); t.forEach(e => e.click()); return t.length; })()"
 ],
 [
  "sleep",
  4
 ],
 [
  "js",
  "(() => { let n = 0; document.querySelectorAll('.ag-row').forEach(r => { const cell = r.querySelector('[col-id=\"attributes.`Run Name`\"]'); const b = cell && cell.querySelector('button'); if (b) { b.click(); n++; } }); return n; })()"
 ],
 [
  "sleep",
  6
 ],
 [
  "js",
  "(() => { const b = Array.from(document.querySelectorAll('button')).find(b => b.getAttribute('aria-label') === 'Toggle sidebar'); if (b) b.click(); return document.querySelectorAll('.ag-row').length; })()"
 ],
 [
  "sleep",
  3
 ],
 [
  "js",
  "(() => { const el = document.elementFromPoint(146, 120); const b = el && el.closest('button, label, [role=radio]'); if (b) b.click(); return b ? b.outerHTML.slice(0,200) : 'none'; })()"
 ],
 [
  "sleep",
  15
 ]
]

if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], STEPS))
