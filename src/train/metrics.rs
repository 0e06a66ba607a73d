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
    writeln!(file, "{line}").map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Opens `DIR/metrics.csv`: appended to when resuming, else new with its header.
pub(super) fn open_csv(dir: &Path, append: bool) -> Result<(std::fs::File, PathBuf)> {
    let io = |source| Error::Io {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let path = dir.join("metrics.csv");
    if append && path.exists() {
        let file = std::fs::OpenOptions::new().append(true).open(&path).map_err(io)?;
        return Ok((file, path));
    }
    let mut file = std::fs::File::create(&path).map_err(io)?;
    writeln!(file, "{CSV_HEADER}").map_err(io)?;
    Ok((file, path))
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
