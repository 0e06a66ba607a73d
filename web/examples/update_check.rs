//! Recomputes natively what `web/update.html` drew, from the optimizer states it
//! froze: the browser test (`web/tests/run.py`) saves the page's report, this
//! program sweeps every frozen state with the library's f64 reference on the host
//! and compares the drawn update functions and slopes at 0 with its own.
//!
//! ```sh
//! cargo run -p sfnap-web --example update_check -- target/web-shots/update.json
//! ```
//!
//! The report: `{"snapshot_step": k, "nets": [{"optimizer", "nap", "g", "x", "y",
//! "z", "zero", "slope", "actual"}], "frozen": [Frozen]}` (`window.updateResult`).
//! Prints a line per network; exits 1 when a drawn value differs from the native
//! one by more than 1e-9 of the largest value of its curve (the browser and the
//! host run the same f64 code; only their `exp`/`pow`/`cos` may differ by an
//! ulp), 2 when the report cannot be read.

use std::process::ExitCode;

use serde::Deserialize;
use sfnap::optim::update_function::Update;
use sfnap::optim::Kind;
use sfnap_web::live::Frozen;

/// Relative tolerance, of the largest magnitude in the compared curve.
const TOLERANCE: f64 = 1e-9;

#[derive(Deserialize)]
struct Drawn {
    optimizer: String,
    nap: bool,
    g: Vec<f64>,
    x: Vec<f64>,
    y: Vec<f64>,
    z: Vec<f64>,
    zero: Update,
    slope: Update,
    actual: Update,
}

#[derive(Deserialize)]
struct Report {
    snapshot_step: u64,
    nets: Vec<Drawn>,
    frozen: Vec<Frozen>,
}

/// The largest difference between `page` and `native`, relative to native's largest magnitude.
fn rel_diff(page: &[f64], native: &[f64]) -> f64 {
    if page.len() != native.len() {
        return f64::INFINITY;
    }
    let scale = native.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let worst = page.iter().zip(native).fold(0.0f64, |m, (a, b)| {
        if a.is_finite() {
            m.max((a - b).abs())
        } else {
            f64::INFINITY
        }
    });
    if scale > 0.0 {
        worst / scale
    } else {
        worst
    }
}

fn updates(u: &Update) -> [f64; 4] {
    [u.g, u.x, u.y, u.z]
}

fn check(report: &Report) -> Result<Vec<String>, String> {
    if report.nets.len() != report.frozen.len() || report.nets.is_empty() {
        return Err(format!(
            "{} drawn networks, {} frozen states",
            report.nets.len(),
            report.frozen.len()
        ));
    }
    let mut lines = Vec::new();
    let mut failed = Vec::new();
    for (drawn, frozen) in report.nets.iter().zip(&report.frozen) {
        let name = format!("{}{}", drawn.optimizer, if drawn.nap { " + NaP" } else { "" });
        let kind = Kind::parse(&drawn.optimizer).map_err(|e| e.to_string())?;
        if frozen.state.cfg.kind != kind || frozen.nap != drawn.nap || frozen.state.k != report.snapshot_step {
            failed.push(format!(
                "{name}: frozen state is {} (NaP {}) at step {}, the page drew {} at step {}",
                frozen.state.cfg.kind, frozen.nap, frozen.state.k, drawn.optimizer, report.snapshot_step
            ));
            continue;
        }
        let native = frozen.sweep().map_err(|e| format!("{name}: {e}"))?;
        let diffs = [
            ("g", rel_diff(&drawn.g, &native.g)),
            ("x", rel_diff(&drawn.x, &native.x)),
            ("y", rel_diff(&drawn.y, &native.y)),
            ("z", rel_diff(&drawn.z, &native.z)),
            ("zero", rel_diff(&updates(&drawn.zero), &updates(&native.zero))),
            ("actual", rel_diff(&updates(&drawn.actual), &updates(&native.actual))),
            ("slope", rel_diff(&updates(&drawn.slope), &updates(&native.slope))),
        ];
        let worst = diffs.iter().map(|d| d.1).fold(0.0f64, f64::max);
        lines.push(format!(
            "{name}: {}[{}] at step {}, slope at 0 x {:.6e} y {:.6e} z {:.6e} (native {:.6e} {:.6e} {:.6e}), \
             {} sweep points, largest relative difference {worst:.1e}",
            frozen.tensor,
            frozen.index,
            frozen.state.k,
            drawn.slope.x,
            drawn.slope.y,
            drawn.slope.z,
            native.slope.x,
            native.slope.y,
            native.slope.z,
            native.g.len(),
        ));
        for (what, d) in diffs {
            if d.is_nan() || d > TOLERANCE {
                failed.push(format!("{name}: {what} differs by {d:.2e} of its scale"));
            }
        }
    }
    if failed.is_empty() {
        Ok(lines)
    } else {
        Err(lines.into_iter().chain(failed).collect::<Vec<_>>().join("\n"))
    }
}

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: update_check REPORT.json");
        return ExitCode::from(2);
    };
    let report: Report = match std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {path}: {e}");
            return ExitCode::from(2);
        }
    };
    match check(&report) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
