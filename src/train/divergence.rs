//! When a run has diverged: its evaluation loss far above where training starts.
//!
//! Every model here starts near the loss of a uniform guess, ln(classes)
//! (2.30 for ten digits, 4.2 for the text's 65 characters). A run is reported as
//! diverged when its evaluation loss at x is above [`FACTOR`] times that at
//! [`EVALS`] evaluations in a row, or at its last evaluation. A model that merely
//! learns badly, or that has just met new labels in the continual stream, stays
//! far below: 100 ln 10 = 230 nats means the true class is given a probability
//! of e^-230 on average. No checkpoint is saved at an evaluation above the
//! limit, so the last one saved is from below it.

use crate::error::{Error, Result};

/// How many times the loss of a uniform guess counts as diverged.
pub const FACTOR: f64 = 100.0;
/// Evaluations in a row above the limit that end a run.
pub const EVALS: u32 = 3;

/// What one evaluation says about the run.
#[derive(Debug)]
pub enum Verdict {
    /// Below the limit: a checkpoint may be saved.
    Fine,
    /// Above the limit, not (yet) for long enough to stop: save nothing.
    Above,
    /// Diverged: the run stops with this error (after recording the evaluation).
    Diverged(Error),
}

/// Follows the evaluation losses of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Divergence {
    classes: usize,
    limit: f64,
    above: u32,
}

impl Divergence {
    /// For a model that predicts one of `classes` classes.
    pub fn new(classes: usize) -> Self {
        Divergence {
            classes,
            limit: FACTOR * (classes.max(2) as f64).ln(),
            above: 0,
        }
    }

    /// The loss above which an evaluation counts against the run.
    pub fn limit(&self) -> f64 {
        self.limit
    }

    /// Takes the evaluation loss at x after `step` steps (`last`: the run's last
    /// evaluation). A loss that is not finite is an error at once.
    pub fn observe(&mut self, step: u64, loss: f64, last: bool) -> Result<Verdict> {
        if !loss.is_finite() {
            return Err(Error::Numerical(format!(
                "the evaluation loss at x after {step} steps is {loss}; the run stopped (lower the learning rate)"
            )));
        }
        if loss <= self.limit {
            self.above = 0;
            return Ok(Verdict::Fine);
        }
        self.above += 1;
        if self.above < EVALS && !last {
            return Ok(Verdict::Above);
        }
        let when = if self.above >= EVALS {
            format!("at {} evaluations in a row", self.above)
        } else {
            "at the last evaluation".to_string()
        };
        Ok(Verdict::Diverged(Error::Numerical(format!(
            "the run diverged: the evaluation loss at x after {step} steps is {loss:.4e}, above {:.1} \
             ({FACTOR} times ln {}, the loss of a uniform guess) {when}; the run stopped and kept its last \
             checkpoint from below that (lower the learning rate)",
            self.limit, self.classes
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(losses: &[f64]) -> Vec<String> {
        let mut d = Divergence::new(10);
        losses
            .iter()
            .enumerate()
            .map(|(i, &l)| match d.observe(i as u64 * 100, l, i + 1 == losses.len()) {
                Ok(Verdict::Fine) => "fine".to_string(),
                Ok(Verdict::Above) => "above".to_string(),
                Ok(Verdict::Diverged(_)) => "diverged".to_string(),
                Err(_) => "error".to_string(),
            })
            .collect()
    }

    #[test]
    fn three_evaluations_in_a_row_or_the_last_one_diverge() {
        let limit = Divergence::new(10).limit();
        assert!((limit - 100.0 * 10f64.ln()).abs() < 1e-9);
        let hi = 1.6e16;
        // A spike that comes back down is not a divergence.
        assert_eq!(
            verdicts(&[2.3, hi, hi, 1.0, 0.5]),
            ["fine", "above", "above", "fine", "fine"]
        );
        assert_eq!(
            verdicts(&[2.3, hi, hi, hi, 1.0]),
            ["fine", "above", "above", "diverged", "fine"]
        );
        assert_eq!(verdicts(&[2.3, 1.0, hi]), ["fine", "fine", "diverged"]);
        // Just below the limit is fine, however long.
        assert_eq!(verdicts(&[limit; 5]), ["fine"; 5]);
        assert_eq!(verdicts(&[2.3, f64::NAN]), ["fine", "error"]);
        assert_eq!(verdicts(&[f64::INFINITY]), ["error"]);
    }

    #[test]
    fn the_message_names_step_loss_and_limit() {
        let mut d = Divergence::new(10);
        for step in [100, 200] {
            assert!(matches!(d.observe(step, 1e16, false), Ok(Verdict::Above)));
        }
        let Ok(Verdict::Diverged(e)) = d.observe(300, 1e16, false) else {
            panic!("expected a divergence")
        };
        let msg = e.to_string();
        for part in ["after 300 steps", "1.0000e16", "230.3", "3 evaluations in a row"] {
            assert!(msg.contains(part), "`{part}` missing from: {msg}");
        }
    }
}
