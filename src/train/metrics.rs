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

/// Opens `DIR/metrics.csv` for a run that starts after `start` steps
/// ([`crate::output::open_log`]): a resumed run keeps exactly the rows an
/// uninterrupted run had written when it saved the checkpoint at step `start`
/// ([`written_by`]). Also returns how many lines were dropped.
pub(super) fn open_csv(dir: &Path, resumed: bool, start: u64) -> Result<(std::fs::File, PathBuf, usize)> {
    let path = dir.join("metrics.csv");
    let (file, dropped) = crate::output::open_log(&path, CSV_HEADER, resumed, written_by(start))?;
    Ok((file, path, dropped))
}

/// Whether a row of `metrics.csv` (its step and fields) was written by the time
/// the checkpoint at step `start` was saved: an evaluation row of step `start`
/// was (the checkpoint follows it), a training-loss row of step `start` was not
/// (it is the next step's).
fn written_by(start: u64) -> impl Fn(u64, &[&str]) -> bool {
    move |step, v| {
        let evaluation = v.len() > 2 && !v[2].is_empty();
        if evaluation {
            step <= start
        } else {
            step < start
        }
    }
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
        let rows_until = |text: &str, start| crate::output::complete_rows(text, CSV_HEADER, written_by(start));
        assert_eq!(
            rows_until(&text, 20),
            "0,2.5,,,,,,,\n10,2.0,,,,,,,\n20,1.5,1.4,0.5,1,1,0.1,0.1,0\n"
        );
        assert_eq!(rows_until(&text, 0), "");
        assert_eq!(rows_until("", 5), "");
        assert_eq!(rows_until("garbage\nx,1,,,,,,,\n", 5), "");
    }
}
