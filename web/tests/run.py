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
  - update functions (web/update.html) of adamw, adamw_sf and sf_plus + NaP after a
    few steps: the functions and slopes at 0 the page drew equal those the library
    computes natively (web/examples/update_check.rs, run with cargo) from the
    optimizer states the page froze;
  - every page's settings in its address: a link with non-default settings in its
    fragment sets the page's controls and the run's config, and stays in the address;
    unknown and invalid entries are named in a note and leave the defaults; a changed
    control is written back into the fragment;
  - the landing page names the adapter;
  - every demo page, in a browser without a WebGPU adapter, shows a notice naming the
    browsers that have one.

Waits are real: each test polls a variable the page sets when it is done. Exits
non-zero on any failure; the last line reads `N passed, M failed`.

    python3 web/tests/run.py [--steps 300] [--shots target/web-shots]
"""

import argparse
import base64
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
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


def open_page(browser, url, page, query, timeout):
    """Opens PAGE.html?QUERY (with `steps=N`) and waits for its run's end: (its result, None, what it read
    from its address), or (None, why it did not finish, None)."""
    browser.open(f"{url}/{page}.html?{query}")
    status = browser.wait_for(f"['done', 'error'].includes(window.{page}Status) && window.{page}Status", timeout)
    if status != "done":
        error = browser.js(f"return window.{page}Error || null;")
        return None, error or f"not done within {timeout} s (status {status})", None
    return browser.js(f"return window.{page}Result;"), None, browser.js(f"return window.{page}Address;")


def run_race(browser, url, query, timeout):
    """Opens race.html?QUERY (with `steps=N`) and waits for the run's end: (its report, None),
    or (None, why it did not finish). scripts/bench_race.py times the page with it too."""
    result, error, _ = open_page(browser, url, "race", query, timeout)
    return result, error


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
    r, error, _ = open_page(browser, url, "spirals", f"optimizer={optimizer}&nap={int(nap)}&steps={steps}", timeout)
    browser.screenshot(shots / f"{tag}.png")
    if error:
        report.check(False, tag, error)
        return
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
    query = f"seed=1&task_steps={task_steps}&steps={steps}"
    r, error, _ = open_page(browser, url, "plasticity", query, max(timeout, 600))
    browser.screenshot(shots / "plasticity.png")
    if error:
        report.check(False, "plasticity", error)
        return
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
    address = browser.js("return Object.fromEntries(new URLSearchParams(location.hash.slice(1)));")
    ok = bool(first and second) and first["function"] == "quadratic" and second["function"] == "beale"
    # The change is written into the address, the function's tuned rates with it.
    ok = ok and address.get("function") == "beale" and address.get("lr_sgd_sf") == lr
    detail = (
        f"{first and first['function']} -> {second and second['function']}, sgd_sf lr {lr}, "
        f"address #{urllib.parse.urlencode(address)}"
    )
    name = "race controls restart the race and are written into the address"
    report.check(ok and second["steps"] == 20, name, detail)


# Per page: non-default settings for a link's fragment (every control of the page), and the
# steps to run. Each must reach the page's control and, but for how long to run, its config.
ADDRESS_CASES = {
    "race": (
        {
            "function": "beale",
            "points": "48",
            "beta": "0.8",
            "warmup_steps": "7",
            "schedule": "wsd",
            "total_steps": "123",
            "run_steps": "900",
            "lr_sgd_sf": "0.002",
            "lr_adamw_sf": "0.015",
            "lr_sf_plus": "0.5",
            "lr_adamw": "0.025",
        },
        3,
    ),
    "spirals": (
        {
            "optimizer": "sf_plus",
            "lr": "0.5",
            "nap": "1",
            "hidden": "24",
            "batch": "16",
            "noise": "0.1",
            "seed": "3",
            "run_steps": "500",
        },
        3,
    ),
    "update": (
        {
            "adamw": "1",
            "lr_adamw": "0.02",
            "nap_adamw": "0",
            "adamw_sf": "1",
            "lr_adamw_sf": "0.02",
            "nap_adamw_sf": "1",
            "sf_plus": "1",
            "lr_sf_plus": "0.2",
            "nap_sf_plus": "1",
            "schedule": "wsd",
            "warmup_steps": "5",
            "total_steps": "300",
            "tensor": "l0.weight",
            "index": "7",
            "span": "20",
            "hidden": "16",
            "batch": "32",
            "noise": "0.05",
            "seed": "2",
            "run_steps": "800",
        },
        3,
    ),
    "plasticity": (
        {
            "inputs": "128",
            "task_steps": "50",
            "hidden": "32",
            "batch": "16",
            "lr": "0.002",
            "plain_norm": "1",
            "sf_lr": "0.004",
            "sf_window": "10",
            "sf_beta": "0.6",
            "seed": "2",
            "run_tasks": "3",
        },
        3,
    ),
}

# The page's settings as its controls show them (checkboxes as 1 or 0) and as its address holds them.
READ_SETTINGS = """
const form = document.getElementById('controls');
const shown = {};
for (const el of form.elements) {
  if (!el.name || !(el.tagName === 'SELECT' || el.tagName === 'INPUT')) continue;
  shown[el.name] = el.type === 'checkbox' ? (el.checked ? '1' : '0') : el.value;
}
const note = document.getElementById('address-note');
return {
  shown,
  address: Object.fromEntries(new URLSearchParams(location.hash.slice(1))),
  search: location.search,
  note: note && !note.hidden ? note.innerText : null,
};
"""


def same_setting(a, b):
    """Two settings' values agree: as numbers where both are, else as text."""
    if isinstance(b, bool):
        a, b = b, a
    if isinstance(a, bool):
        return a == (str(b).lower() in ("1", "true"))
    try:
        x, y = float(a), float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)
    return abs(x - y) <= 1e-9 * max(abs(x), abs(y), 1e-30)


def config_value(config, key):
    """The config's field for a control (`lr_<racer>` lies in the race's `lr` map; on the update page an
    optimizer's box, `lr_<optimizer>` and `nap_<optimizer>` in its entry of `nets`); None where it has none."""
    if key in config:
        return config[key]
    if key.startswith("lr_") and isinstance(config.get("lr"), dict):
        return config["lr"].get(key[3:])
    if "nets" in config:
        nets = {n["optimizer"]: n for n in config["nets"]}
        field, _, name = key.partition("_")
        if field in ("lr", "nap") and name in nets:
            return nets[name][field]
        if key in nets:
            return True
    return None


def test_address(browser, url, report, page, timeout):
    """A link with every control of PAGE at a non-default value in its fragment: the page starts with
    them (its controls and its run's config as the wasm module took it), ignores none, and its
    address still holds them once it has written its settings back."""
    settings, steps = ADDRESS_CASES[page]
    name = f"{page} settings from the address"
    result, error, taken = open_page(browser, url, page, f"steps={steps}#{urllib.parse.urlencode(settings)}", timeout)
    if error:
        report.check(False, name, error)
        return
    seen = browser.js(READ_SETTINGS)
    wrong = []
    for key, value in settings.items():
        if not same_setting(seen["shown"].get(key), value):
            wrong.append(f"control {key} {seen['shown'].get(key)!r}")
        if not same_setting(seen["address"].get(key), value):
            wrong.append(f"address {key} {seen['address'].get(key)!r}")
        in_config = config_value(result["config"], key)
        if in_config is None and key not in ("run_steps", "run_tasks"):
            wrong.append(f"config has no {key}")
        elif in_config is not None and not same_setting(in_config, value):
            wrong.append(f"config {key} {in_config!r}")
    if taken["ignored"]:
        wrong.append(f"ignored {taken['ignored']}")
    if result["steps"] != steps or seen["search"] != f"?steps={steps}":
        wrong.append(f"{result['steps']} steps, query {seen['search']}")
    detail = f"{len(settings)} settings" + (": " + "; ".join(wrong) if wrong else " in controls, config and address")
    report.check(not wrong, name, detail)


def test_address_invalid(browser, url, report, shots, timeout):
    """Unknown and invalid entries in a race link are named in the page's note (and in
    window.raceAddress) and leave those controls at their defaults; the valid ones apply."""
    fragment = "function=nosuch&points=0&beta=2&warmup_steps=7&bogus=1&schedule=wsd&total_steps=0x10"
    result, error, taken = open_page(browser, url, "race", f"steps=2#{fragment}", timeout)
    name = "race address: unknown and invalid settings named, defaults kept"
    if error:
        report.check(False, name, error)
        return
    seen = browser.js(READ_SETTINGS)
    browser.screenshot(shots / "address-note.png")
    ignored = {e["key"]: e["reason"] for e in taken["ignored"]}
    cfg = result["config"]
    ok = (
        set(ignored) == {"function", "points", "beta", "bogus", "total_steps"}
        and (cfg["function"], cfg["points"], cfg["beta"], cfg["warmup_steps"], cfg["schedule"], cfg["total_steps"])
        == ("rosenbrock", 64, 0.9, 7, "wsd", 500)
        and seen["note"] is not None
        and all(f"{k}=" in seen["note"] for k in ignored)
        and "bogus" not in seen["address"]
        and seen["address"].get("points") == "64"
        and seen["address"].get("warmup_steps") == "7"
    )
    detail = "; ".join(f"{k}: {v}" for k, v in ignored.items())
    detail += f"; address now #{urllib.parse.urlencode(seen['address'])}"
    report.check(ok, name, detail)


def test_update(browser, url, report, shots, steps, timeout):
    """The update-functions page after STEPS steps of adamw (cosine), adamw_sf and sf_plus + NaP: every
    network's drawn functions are finite with x's slope at 0 negative, and the functions and slopes it drew
    are those the library computes natively from the states it froze (web/examples/update_check.rs)."""
    name = "update functions drawn = native computation"
    result, error, _ = open_page(browser, url, "update", f"steps={steps}#nap_sf_plus=1", timeout)
    browser.screenshot(shots / "update.png")
    if error:
        report.check(False, name, error)
        return
    nets = result["nets"]
    bad = [
        n["optimizer"]
        for n in nets
        if not (
            len(n["g"]) == len(n["x"]) == 81
            and all(v is not None for s in "xyz" for v in n[s])
            and n["slope"]["x"] is not None
            and n["slope"]["x"] < 0
        )
    ]
    saved = shots / "update.json"
    saved.write_text(json.dumps(result))
    cargo = os.environ.get("CARGO", "cargo")
    t0 = time.time()
    native = subprocess.run(
        [cargo, "run", "-q", "-p", "sfnap-web", "--example", "update_check", "--", str(saved)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    lines = (native.stdout + native.stderr).strip().replace("\n", "; ")
    names = [n["optimizer"] + ("+nap" if n["nap"] else "") for n in nets]
    detail = (
        f"{result['steps']} steps, {result['steps_per_second']:.1f} steps/s, {names}"
        f"; native check ({time.time() - t0:.0f} s, exit {native.returncode}): {lines}"
    )
    if bad:
        detail += f"; not finite or slope of x not negative: {bad}"
    ok = result["steps"] == steps and len(nets) == 3 and not bad and native.returncode == 0
    report.check(ok, name, detail)


def test_address_edited(browser, url, report, timeout):
    """A fragment edited by hand on an open page (a navigation within the page) starts the page again
    from it."""
    name = "race address edited by hand restarts the page from it"
    result, error, _ = open_page(browser, url, "race", "steps=2#function=beale&points=8", timeout)
    if error:
        report.check(False, name, error)
        return
    browser.js("location.hash = 'function=quadratic&points=16';")
    again = browser.wait_for(
        "window.raceStatus === 'done' && window.raceResult.config.function === 'quadratic' && window.raceResult",
        timeout,
    )
    cfg = again and again["config"]
    ok = result["config"]["function"] == "beale" and bool(cfg) and cfg["points"] == 16
    report.check(ok, name, f"beale, 8 points -> {cfg and cfg['function']}, {cfg and cfg['points']} points")


def test_index(browser, url, report, timeout):
    browser.open(f"{url}/index.html")
    line = browser.wait_for(
        "(t => t.startsWith('WebGPU adapter') || t === 'no WebGPU' ? t : null)"
        "(document.getElementById('adapter').textContent)",
        timeout,
    )
    links = browser.js("return [...document.querySelectorAll('a.card')].map(a => a.getAttribute('href'));")
    pages = {"race.html", "spirals.html", "plasticity.html", "update.html"}
    ok = bool(line) and line.startswith("WebGPU adapter") and pages <= set(links or [])
    report.check(ok, "index page", f"{line}; links {links}")


def test_no_adapter(url, report, shots, timeout):
    """Every demo page, in a browser without a WebGPU adapter, shows the notice naming the browsers that have one."""
    browser = Browser(BASE_FLAGS)  # no --enable-unsafe-webgpu: navigator.gpu without an adapter
    try:
        for page in ("race", "spirals", "plasticity", "update"):
            browser.open(f"{url}/{page}.html")
            status = browser.wait_for(
                f"['done', 'error'].includes(window.{page}Status) && window.{page}Status", timeout
            )
            notice = browser.js(
                "const n = document.getElementById('notice');"
                "return n.hidden ? null : n.innerText.replace(/\\s+/g, ' ');"
            )
            if page == "race":
                browser.screenshot(shots / "no-webgpu.png")
            ok = status == "error" and notice is not None and "WebGPU runs in" in notice
            report.check(ok, f"{page} page without a WebGPU adapter shows a notice", (notice or "no notice")[:160])
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
    parser.add_argument("--update-steps", type=int, default=40, help="training steps on the update-functions page")
    parser.add_argument(
        "--only",
        default="",
        help="run only these tests (comma-separated: index, replay, race, spirals, plasticity, update, address, "
        "no-adapter)",
    )
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
            if want("address"):
                for page in ADDRESS_CASES:
                    test_address(browser, url, report, page, args.timeout)
                test_address_invalid(browser, url, report, args.shots, args.timeout)
                test_address_edited(browser, url, report, args.timeout)
            if want("spirals"):
                for optimizer, nap in [("adamw_sf", False), ("sgd_sf", True)]:
                    test_spirals(browser, url, report, args.shots, optimizer, nap, args.spirals_steps, args.timeout)
            if want("plasticity"):
                test_plasticity(browser, url, report, args.shots, args.plasticity_tasks, args.timeout)
            if want("update"):
                test_update(browser, url, report, args.shots, args.update_steps, args.timeout)
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
