//! The plasticity benchmark: a fixed set of inputs whose labels are re-drawn at
//! random every `task_steps` steps, so the network must keep learning new
//! mappings (as in the NaP paper's continual experiments).

use super::{Classification, Rng};

/// A stream of tasks over the same inputs with fresh random labels.
#[derive(Debug, Clone)]
pub struct Continual {
    base: Classification,
    /// Steps per task.
    pub task_steps: u64,
    seed: u64,
}

impl Continual {
    /// `inputs` rows of `base` (their labels are ignored), a new task every `task_steps` steps.
    pub fn new(base: &Classification, inputs: usize, task_steps: u64, seed: u64) -> Continual {
        let n = inputs.min(base.len());
        let indices: Vec<usize> = (0..n).collect();
        Continual {
            base: base.select(&indices),
            task_steps: task_steps.max(1),
            seed,
        }
    }

    /// The task index of step `step`.
    pub fn task(&self, step: u64) -> u64 {
        step / self.task_steps
    }

    /// The data set of task `task`: the inputs with that task's random labels.
    pub fn task_data(&self, task: u64) -> Classification {
        let mut rng = Rng::new(self.seed ^ task.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut data = self.base.clone();
        for l in data.labels.iter_mut() {
            *l = rng.below(data.classes) as u32;
        }
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::digits::digits;

    #[test]
    fn labels_change_between_tasks_not_within() {
        let c = Continual::new(&digits(), 1024, 500, 3);
        assert_eq!(c.task(499), 0);
        assert_eq!(c.task(500), 1);
        let (a, b) = (c.task_data(0), c.task_data(1));
        assert_eq!(a.labels, c.task_data(0).labels);
        let same = a.labels.iter().zip(&b.labels).filter(|(x, y)| x == y).count();
        assert!(same < 200, "{same} of 1024 labels unchanged");
        assert_eq!(a.inputs, b.inputs);
    }
}
