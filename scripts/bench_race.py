#!/usr/bin/env python3
"""The browser race's speed: steps per second of web/race.html in headless Chromium.

The race (web/race.html) steps every racer's points with one batched dispatch per
optimizer, and reads them back once per animation frame; the page sizes its frames
itself (more steps per frame while frames are fast). This times whole runs of
`--steps` steps on one test function at each point count, as a user of the page sees
them (window.raceResult.steps_per_second: steps over the wall time from the race's
start), the best of `--trials` runs, and writes one JSON line per point count.

    python3 scripts/bench_race.py [--points 64,1024] [--steps 1500] [--out FILE]

Needs web/pkg (make web-build) and Chromium with chromedriver (scripts/setup-web.sh
--browser); it reuses the browser driver of web/tests/run.py.
"""

import argparse
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "web" / "tests"))
sys.dont_write_bytecode = True
import run as web  # noqa: E402  (web/tests/run.py: Browser, run_race, serve)


def time_race(browser, url, function, points, steps, timeout):
    """One run of the race page: its report (adapter, steps, steps_per_second, ...)."""
    result, error = web.run_race(browser, url, f"function={function}&points={points}&steps={steps}", timeout)
    if error:
        raise RuntimeError(f"race with {points} points: {error}")
    return result


def main():
    parser = argparse.ArgumentParser(description="steps per second of the browser race")
    parser.add_argument("--points", default="64,1024", help="points per racer, comma-separated")
    parser.add_argument("--steps", type=int, default=1500, help="steps per run")
    parser.add_argument("--function", default="quadratic")
    parser.add_argument("--trials", type=int, default=3, help="runs per point count; the fastest is kept")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one run may take")
    parser.add_argument("--out", type=pathlib.Path, help="append JSON lines here (default: standard output)")
    args = parser.parse_args()

    if not (ROOT / "web" / "pkg" / "sfnap_bg.wasm").exists():
        sys.exit("error: web/pkg/ is not built: run `make web-build`")
    server, url = web.serve.serve_in_background()
    rows = []
    try:
        browser = web.Browser(web.BASE_FLAGS + web.WEBGPU_FLAGS)
        try:
            for points in (int(p) for p in args.points.split(",")):
                best = None
                for trial in range(args.trials):
                    r = time_race(browser, url, args.function, points, args.steps, args.timeout)
                    print(
                        f"bench_race: {points} points, trial {trial + 1}: {r['steps_per_second']:.1f} steps/s",
                        file=sys.stderr,
                    )
                    if best is None or r["steps_per_second"] > best["steps_per_second"]:
                        best = r
                rows.append(
                    {
                        "adapter": best["adapter"],
                        "function": args.function,
                        "points": points,
                        "racers": len(best["racers"]),
                        "steps": best["steps"],
                        "steps_per_second": best["steps_per_second"],
                        "trials": args.trials,
                    }
                )
        finally:
            browser.close()
    finally:
        server.shutdown()
    text = "".join(json.dumps(row) + "\n" for row in rows)
    if args.out:
        with args.out.open("a") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
