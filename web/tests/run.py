#!/usr/bin/env python3
"""The browser tests: the web pages in headless Chromium on its WebGPU adapter.

Drives Debian's chromium through chromium-driver (the W3C WebDriver protocol, spoken
with the standard library only), against web/ served on 127.0.0.1:

  - every golden replay case of tests/data through the wasm `replay`, checked within
    its tolerance (web/tests/replay.html), one result per case;
  - the optimizer race (web/race.html) for a fixed number of steps on every test
    function: every racer's mean loss must fall; screenshots go to target/web-shots/;
    and a changed control restarts the race with the new settings;
  - two spirals (web/spirals.html) for a fixed number of steps: the training loss and
    the test loss at x fall;
  - plasticity (web/plasticity.html) over a label-reset stream: the NaP network's mean
    end-of-task accuracy over the later tasks is at least the plain network's, and
    windowed adamw_sf + NaP's is at least 0.1 above NaP's;
  - the landing page names the adapter;
  - a browser without a WebGPU adapter gets a notice naming the browsers that have one.

Waits are real: each test polls a variable the page sets when it is done. Exits
non-zero on any failure; the last line reads `N passed, M failed`.

    python3 web/tests/run.py [--steps 300] [--shots target/web-shots]
"""

import argparse
import base64
import json
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "web"))
sys.dont_write_bytecode = True  # no __pycache__ in web/
import serve  # noqa: E402  (web/serve.py)

CHROMIUM = "/usr/bin/chromium"
# --headless: the new headless mode, a full browser without a window.
# --no-sandbox: needed when running as root (containers, CI).
# --enable-unsafe-webgpu: WebGPU is still behind this switch on Linux. With no GPU,
#   Chromium's Dawn then offers its CPU adapter, SwiftShader (Vulkan on the CPU);
#   Debian's Chromium 150+ needs no --use-webgpu-adapter, --use-angle or
#   --enable-features=Vulkan for that. Without the switch navigator.gpu exists but
#   requestAdapter() gives null: the no-adapter test below relies on exactly that.
# --disable-background-networking, --disable-component-update, --no-first-run: no
#   traffic beyond 127.0.0.1 and no downloads. A fresh --user-data-dir per browser.
BASE_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--window-size=1300,1400",
]
WEBGPU_FLAGS = ["--enable-unsafe-webgpu"]


class WebDriverError(RuntimeError):
    pass


class Browser:
    """One Chromium session through chromedriver."""

    def __init__(self, flags):
        self.profile = tempfile.mkdtemp(prefix="sfnap-chromium-")
        self.driver_port = free_port()
        self.log = tempfile.TemporaryFile()
        self.driver = subprocess.Popen(
            ["chromedriver", f"--port={self.driver_port}"], stdout=self.log, stderr=subprocess.STDOUT
        )
        self.base = f"http://127.0.0.1:{self.driver_port}"
        deadline = time.time() + 30
        while True:
            try:
                if self._call("GET", "/status").get("ready"):
                    break
            except (OSError, WebDriverError):
                pass
            if time.time() > deadline:
                self.close()
                raise WebDriverError("chromedriver did not start within 30 s")
            time.sleep(0.2)
        caps = {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": flags + [f"--user-data-dir={self.profile}"]},
        }
        try:
            self.session = self._call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})["sessionId"]
        except WebDriverError:
            self.close()
            raise

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return json.loads(resp.read())["value"]
        except urllib.error.HTTPError as e:
            detail = json.loads(e.read() or b"{}").get("value", {})
            raise WebDriverError(f"{method} {path}: {detail.get('error')}: {detail.get('message', '')[:500]}")

    def _s(self, path):
        return f"/session/{self.session}{path}"

    def open(self, url):
        self._call("POST", self._s("/url"), {"url": url})

    def js(self, script, *args):
        """Runs `script` (a function body) in the page and returns its value."""
        return self._call("POST", self._s("/execute/sync"), {"script": script, "args": list(args)})

    def wait_for(self, expression, timeout):
        """Polls a JS expression until it is truthy; returns its value, or None after `timeout` s."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.js(f"return {expression};")
            if value:
                return value
            time.sleep(0.25)
        return None

    def screenshot(self, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self._call("GET", self._s("/screenshot"))))

    def close(self):
        try:
            if getattr(self, "session", None):
                self._call("DELETE", self._s(""))
        except (OSError, WebDriverError):
            pass
        self.driver.terminate()
        try:
            self.driver.wait(10)
        except subprocess.TimeoutExpired:
            self.driver.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, name, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)


def test_replay(browser, url, report, shots, timeout):
    browser.open(f"{url}/tests/replay.html")
    results = browser.wait_for("window.replayResults", timeout)
    browser.screenshot(shots / "replay.png")
    if not results:
        report.check(False, "replay page", f"no result within {timeout} s")
        return
    if results.get("error"):
        report.check(False, "replay page", results["error"])
        return
    if not results["cases"]:
        report.check(False, "replay page", "no golden cases found")
    for case in results["cases"]:
        detail = f"{case['ms']:.0f} ms on {results['adapter']}" + ("" if case["ok"] else f": {case['detail']}")
        report.check(case["ok"], f"replay {case['name']}", detail)


def run_race(browser, url, query, timeout):
    """Opens race.html?QUERY (with `steps=N`) and waits for the run's end: (its report, None),
    or (None, why it did not finish). scripts/bench_race.py times the page with it too."""
    browser.open(f"{url}/race.html?{query}")
    status = browser.wait_for("['done', 'error'].includes(window.raceStatus) && window.raceStatus", timeout)
    if status != "done":
        error = browser.js("return window.raceError || null;")
        return None, error or f"not done within {timeout} s (status {status})"
    return browser.js("return window.raceResult;"), None


def test_race(browser, url, report, shots, function, steps, timeout):
    result, error = run_race(browser, url, f"function={function}&steps={steps}", timeout)
    name = f"race {function}"
    browser.screenshot(shots / f"race-{function}.png")
    if error:
        report.check(False, name, error)
        return
    if function == "rosenbrock":
        browser.screenshot(shots / "race.png")
    bad = [r for r in result["racers"] if not (r["end"] is not None and r["end"] < 0.5 * r["start"])]
    losses = ", ".join(
        f"{r['name']} {r['start']:.3g} -> {r['end'] if r['end'] is None else format(r['end'], '.3g')}"
        for r in result["racers"]
    )
    detail = (
        f"{result['steps']} steps x {result['points']} points, {result['steps_per_second']:.0f} steps/s; "
        f"mean loss at x {losses}"
    )
    if bad:
        detail += f"; did not halve: {', '.join(r['name'] for r in bad)}"
    report.check(result["steps"] == steps and not bad, name, detail)


def test_spirals(browser, url, report, shots, optimizer, nap, steps, timeout):
    """The spirals page trains live: the training loss falls and the test loss at x falls."""
    tag = f"spirals-{optimizer}{'-nap' if nap else ''}"
    browser.open(f"{url}/spirals.html?optimizer={optimizer}&nap={int(nap)}&steps={steps}")
    status = browser.wait_for("['done', 'error'].includes(window.spiralsStatus) && window.spiralsStatus", timeout)
    browser.screenshot(shots / f"{tag}.png")
    if status != "done":
        error = browser.js("return window.spiralsError || null;")
        report.check(False, tag, error or f"not done within {timeout} s (status {status})")
        return
    r = browser.js("return window.spiralsResult;")
    ok = (
        r["steps"] == steps
        and r["train_loss_last"] < 0.8 * r["train_loss_first"]
        and r["test_loss_x"] is not None
        and r["test_loss_x"] < r["test_loss_x_start"]
    )
    detail = (
        f"{r['steps']} steps, {r['steps_per_second']:.0f} steps/s; train loss {r['train_loss_first']:.3f} -> "
        f"{r['train_loss_last']:.3f}; test loss at x {r['test_loss_x_start']:.3f} -> {r['test_loss_x']}; "
        f"test accuracy x {r['test_acc_x']:.3f} y {r['test_acc_y']:.3f}"
    )
    report.check(ok, tag, detail)


def test_plasticity(browser, url, report, shots, tasks, timeout):
    """The plasticity page: over the later tasks, NaP's mean end-of-task accuracy is at least the plain run's,
    and windowed adamw_sf + NaP's is at least 0.1 above NaP's.

    The page's defaults (256 inputs, 64-128-128-10, AdamW 1e-3 with a plain network without LayerNorm,
    adamw_sf 3e-3 with window 20 and beta 0.5, a reset every 100 steps), as in web/tests/live.rs (natively on
    lavapipe, seeds 1 and 4: plain 0.38, 0.35; NaP 0.54, 0.50; windowed adamw_sf + NaP 0.81, 0.82)."""
    task_steps = 100
    steps = tasks * task_steps
    browser.open(f"{url}/plasticity.html?seed=1&task_steps={task_steps}&steps={steps}")
    status = browser.wait_for(
        "['done', 'error'].includes(window.plasticityStatus) && window.plasticityStatus", max(timeout, 600)
    )
    browser.screenshot(shots / "plasticity.png")
    if status != "done":
        error = browser.js("return window.plasticityError || null;")
        report.check(False, "plasticity", error or f"not done within {timeout} s (status {status})")
        return
    r = browser.js("return window.plasticityResult;")
    plain, nap, sf = r["plain"], r["nap"], r["nap_sf"]
    ok = (
        r["steps"] == steps
        and len(plain["task_acc"]) == tasks
        and len(sf["task_acc"]) == tasks
        and plain["later"] is not None
        and nap["later"] >= plain["later"]
        and sf["later"] >= nap["later"] + 0.1
    )
    fmt = lambda v: ", ".join(f"{x:.2f}" for x in v)  # noqa: E731
    detail = (
        f"{tasks} tasks x {task_steps} steps, {r['steps_per_second']:.0f} steps/s; later tasks plain "
        f"{plain['later']:.3f} NaP {nap['later']:.3f} SF + NaP {sf['later']:.3f}; end-of-task plain "
        f"[{fmt(plain['task_acc'])}] NaP [{fmt(nap['task_acc'])}] SF + NaP [{fmt(sf['task_acc'])}]; norms plain "
        f"{fmt(plain['norms_start'])} -> {fmt(plain['norms_end'])}, NaP {fmt(nap['norms_start'])} -> "
        f"{fmt(nap['norms_end'])}"
    )
    report.check(ok, "plasticity: NaP keeps accuracy after resets, windowed adamw_sf + NaP keeps up", detail)


def test_controls_restart(browser, url, report, timeout):
    """Changing a control restarts the race with the new settings (and the function's tuned rates)."""
    browser.open(f"{url}/race.html?function=quadratic&steps=20")
    first = browser.wait_for("window.raceStatus === 'done' && window.raceResult", timeout)
    browser.js(
        "window.raceStatus = 'restarting'; const s = document.getElementById('function');"
        "s.value = 'beale'; s.dispatchEvent(new Event('change', { bubbles: true }));"
    )
    second = browser.wait_for("window.raceStatus === 'done' && window.raceResult", timeout)
    lr = browser.js("return document.querySelector('input[name=lr_sgd_sf]').value;")
    ok = bool(first and second) and first["function"] == "quadratic" and second["function"] == "beale"
    detail = f"{first and first['function']} -> {second and second['function']}, sgd_sf lr {lr}"
    report.check(ok and second["steps"] == 20, "race controls restart the race", detail)


def test_index(browser, url, report, timeout):
    browser.open(f"{url}/index.html")
    line = browser.wait_for(
        "(t => t.startsWith('WebGPU adapter') || t === 'no WebGPU' ? t : null)"
        "(document.getElementById('adapter').textContent)",
        timeout,
    )
    links = browser.js("return [...document.querySelectorAll('a.card')].map(a => a.getAttribute('href'));")
    ok = bool(line) and line.startswith("WebGPU adapter") and {"race.html", "spirals.html", "plasticity.html"} <= set(
        links or []
    )
    report.check(ok, "index page", f"{line}; links {links}")


def test_no_adapter(url, report, shots, timeout):
    browser = Browser(BASE_FLAGS)  # no --enable-unsafe-webgpu: navigator.gpu without an adapter
    try:
        browser.open(f"{url}/race.html")
        status = browser.wait_for("['done', 'error'].includes(window.raceStatus) && window.raceStatus", timeout)
        notice = browser.js(
            "const n = document.getElementById('notice'); return n.hidden ? null : n.innerText.replace(/\\s+/g, ' ');"
        )
        browser.screenshot(shots / "no-webgpu.png")
        ok = status == "error" and notice is not None and "WebGPU runs in" in notice
        report.check(ok, "race page without a WebGPU adapter shows a notice", (notice or "no notice")[:160])
    finally:
        browser.close()


def main():
    parser = argparse.ArgumentParser(description="sfnap's browser tests in headless Chromium")
    parser.add_argument("--steps", type=int, default=300, help="race steps per function")
    parser.add_argument("--shots", type=pathlib.Path, default=ROOT / "target" / "web-shots")
    parser.add_argument("--timeout", type=float, default=300, help="seconds each page may take")
    parser.add_argument("--functions", default="rosenbrock,quadratic,noisy_bowl,beale")
    parser.add_argument("--spirals-steps", type=int, default=200, help="spirals training steps")
    parser.add_argument("--plasticity-tasks", type=int, default=12, help="tasks of 100 steps on the plasticity page")
    parser.add_argument("--only", default="", help="run only these tests (comma-separated: index, replay, race, spirals, plasticity, no-adapter)")
    args = parser.parse_args()

    if not (ROOT / "web" / "pkg" / "sfnap_bg.wasm").exists():
        sys.exit("error: web/pkg/ is not built: run `make web-build` (or `make test-web`)")
    for tool in (CHROMIUM, "chromedriver"):
        if not shutil.which(tool):
            sys.exit(f"error: {tool} not found: run `bash scripts/setup-web.sh --browser`")

    only = {t for t in args.only.split(",") if t}

    def want(test):
        return not only or test in only

    server, url = serve.serve_in_background()
    report = Report()
    try:
        browser = Browser(BASE_FLAGS + WEBGPU_FLAGS)
        try:
            if want("index"):
                test_index(browser, url, report, args.timeout)
            if want("replay"):
                test_replay(browser, url, report, args.shots, args.timeout)
            if want("race"):
                for function in args.functions.split(","):
                    test_race(browser, url, report, args.shots, function, args.steps, args.timeout)
                test_controls_restart(browser, url, report, args.timeout)
            if want("spirals"):
                for optimizer, nap in [("adamw_sf", False), ("sgd_sf", True)]:
                    test_spirals(browser, url, report, args.shots, optimizer, nap, args.spirals_steps, args.timeout)
            if want("plasticity"):
                test_plasticity(browser, url, report, args.shots, args.plasticity_tasks, args.timeout)
        finally:
            browser.close()
        if want("no-adapter"):
            test_no_adapter(url, report, args.shots, args.timeout)
    except WebDriverError as e:
        report.check(False, "browser", str(e))
    finally:
        server.shutdown()
    print(f"screenshots in {args.shots}")
    print(f"{report.passed} passed, {report.failed} failed")
    sys.exit(1 if report.failed else 0)


if __name__ == "__main__":
    main()
