//! `metrics.csv`: one row per evaluation, and one per read-back training loss.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One row of `metrics.csv`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsRow {
    /// Steps taken.
    pub step: u64,
    /// Mean loss of the last read-back batch, at y.
    pub train_loss: f64,
    /// Loss of the evaluation set at x.
    pub eval_loss: f64,
    /// Accuracy of the evaluation set at x.
    pub eval_accuracy: f64,
    /// Euclidean norm of the last gradient.
    pub grad_norm: f64,
    /// Frobenius norm of the hidden (scale-invariant) weights at x (0 when the model has none).
    pub hidden_weight_norm: f64,
    /// The step size gamma of the last step.
    pub gamma: f64,
    /// gamma / |W| (Adam kinds) or gamma / |W|^2 (SGD) of the hidden weights (NaN without any).
    pub effective_lr: f64,
    /// Task of the continual stream (0 otherwise).
    pub task: u64,
}

const CSV_HEADER: &str = "step,train_loss,eval_loss,eval_accuracy,grad_norm,hidden_weight_norm,gamma,effective_lr,task";

impl MetricsRow {
    /// The row as a line of `metrics.csv`.
    pub(super) fn csv(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{}",
            self.step,
            self.train_loss,
            self.eval_loss,
            self.eval_accuracy,
            self.grad_norm,
            self.hidden_weight_norm,
            self.gamma,
            self.effective_lr,
            self.task
        )
    }
}

/// Appends `line` to the open `metrics.csv` at `path`.
pub(super) fn write_row(file: &mut std::fs::File, path: &Path, line: &str) -> Result<()> {
    writeln!(file, "{line}").map_err(|source| Error::Write {
        path: path.display().to_string(),
        source,
    })
}

/// Opens `DIR/metrics.csv` for a run that starts after `start` steps.
///
/// A new run (`resumed` false) writes a new file with its header. A resumed run
/// keeps exactly the rows an uninterrupted run had written when it saved the
/// checkpoint at step `start` ([`rows_until`]), rewrites the file atomically
/// with them and appends: rows a killed run wrote after its last checkpoint, and
/// a torn last line (a full disk), are dropped instead of staying out of order.
/// Also returns how many lines were dropped so.
pub(super) fn open_csv(dir: &Path, resumed: bool, start: u64) -> Result<(std::fs::File, PathBuf, usize)> {
    let path = dir.join("metrics.csv");
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let (kept, dropped) = if resumed && path.exists() {
        let text = std::fs::read_to_string(&path).map_err(io)?;
        let kept = rows_until(&text, start);
        let dropped = text.lines().skip(1).count() - kept.lines().count();
        (kept, dropped)
    } else {
        (String::new(), 0)
    };
    crate::checkpoint::write_atomic(&path, format!("{CSV_HEADER}\n{kept}").as_bytes())?;
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|source| Error::Write {
            path: path.display().to_string(),
            source,
        })?;
    Ok((file, path, dropped))
}

/// The rows of a `metrics.csv` (header excluded) that a run had written when it
/// saved its checkpoint at step `start`: training losses of the steps before it
/// and evaluations up to it. Lines that are not complete rows (a torn last line,
/// a wrong number of fields, no step) are dropped.
fn rows_until(text: &str, start: u64) -> String {
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    let fields = CSV_HEADER.split(',').count();
    complete
        .lines()
        .skip(1)
        .filter(|line| {
            let v: Vec<&str> = line.split(',').collect();
            let Some(step) = v.first().and_then(|s| s.parse::<u64>().ok()) else {
                return false;
            };
            let evaluation = v.len() > 2 && !v[2].is_empty();
            v.len() == fields && if evaluation { step <= start } else { step < start }
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Reads a `metrics.csv` back: (step, train_loss, eval_loss, eval_accuracy) per row.
pub fn read_metrics(path: &Path) -> Result<Vec<(f64, f64, f64, f64)>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    text.lines()
        .skip(1)
        .enumerate()
        .map(|(i, line)| {
            let v: Vec<f64> = line.split(',').map(|f| f.parse().unwrap_or(f64::NAN)).collect();
            if v.len() < 4 {
                return Err(Error::invalid(
                    format!("{}:{}", path.display(), i + 2),
                    "too few columns",
                ));
            }
            Ok((v[0], v[1], v[2], v[3]))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_keeps_the_rows_written_by_its_checkpoint() {
        let text = format!(
            "{CSV_HEADER}\n0,2.5,,,,,,,\n10,2.0,,,,,,,\n20,1.5,1.4,0.5,1,1,0.1,0.1,0\n20,1.2,,,,,,,\n30,1.0,,,,,,,\n30,0.9,0.8"
        );
        // Checkpoint at 20: its evaluation stays; the training loss of step 20 (after
        // the checkpoint), step 30 and the torn evaluation line go.
        assert_eq!(
            rows_until(&text, 20),
            "0,2.5,,,,,,,\n10,2.0,,,,,,,\n20,1.5,1.4,0.5,1,1,0.1,0.1,0\n"
        );
        assert_eq!(rows_until(&text, 0), "");
        assert_eq!(rows_until("", 5), "");
        assert_eq!(rows_until("garbage\nx,1,,,,,,,\n", 5), "");
    }
}
