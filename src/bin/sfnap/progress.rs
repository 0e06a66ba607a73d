//! `sfnap train`'s progress bar: a [`TrainObserver`] drawing with indicatif.
//!
//! Also compiled into `examples/digits.rs` (by `#[path]`), so `make demo` shows the
//! same bar.

use indicatif::{ProgressBar, ProgressStyle};
use sfnap::train::{MetricsRow, Progress, TrainObserver};

/// A bar of the run's steps with the latest training loss and the speed, and a
/// line above it for every evaluation. Created at the run's start; cleared when
/// the run finishes (a failed run leaves it standing above the error).
#[derive(Default)]
pub struct Bar(Option<ProgressBar>);

impl TrainObserver for Bar {
    fn repaired(&mut self, what: &str) {
        eprintln!("note: {what}");
    }

    fn start(&mut self, done: u64, total: u64) {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} steps  {msg}  [{elapsed} < {eta}]")
                .expect("a valid template"),
        );
        bar.set_position(done);
        self.0 = Some(bar);
    }

    fn step(&mut self, p: &Progress) {
        if let Some(bar) = &self.0 {
            bar.set_position(p.done);
            bar.set_message(format!("loss {:.4}  {:.0} steps/s", p.train_loss, p.steps_per_s));
        }
    }

    fn eval(&mut self, row: &MetricsRow) {
        if let Some(bar) = &self.0 {
            bar.println(format!(
                "step {}: eval loss {:.4}, accuracy {:.2}% (x)",
                row.step,
                row.eval_loss,
                100.0 * row.eval_accuracy
            ));
        }
    }

    fn finished(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}
