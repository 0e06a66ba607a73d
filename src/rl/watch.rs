//! `sfnap rl --watch`: one greedy episode of each environment of a run, played
//! by the f64 twins on the host with the checkpoint's x weights (the network's
//! forward pass in f64), as lines of text.

use std::path::Path;

use super::agent::AgentConfig;
use super::run::{checkpoint_path, resume_config};
use super::{Kind, Twin, MAX_STEPS, TERMINATED};
use crate::checkpoint;
use crate::error::Result;
use crate::model::mlp::MlpConfig;
use crate::model::Model;

/// Steps between two printed lines.
const EVERY: u32 = 10;
/// Characters of the drawn track.
const TRACK: usize = 41;

/// A network's weights by tensor name, as f64.
struct Weights(Vec<(String, Vec<f64>)>);

impl Weights {
    fn get(&self, name: &str) -> &[f64] {
        &self
            .0
            .iter()
            .find(|(n, _)| n == name)
            .expect("every tensor of the model was loaded")
            .1
    }
}

/// The Q-values of `obs` under `model` with weights `w`, in f64: each hidden
/// layer x W (+ b without norms), LayerNorm (eps 1e-5), ReLU; then the head.
fn q_values(model: &MlpConfig, w: &Weights, obs: &[f64]) -> Vec<f64> {
    let linear = |x: &[f64], weight: &[f64], outputs: usize| -> Vec<f64> {
        (0..outputs)
            .map(|j| x.iter().enumerate().map(|(i, &v)| v * weight[i * outputs + j]).sum())
            .collect()
    };
    let mut x = obs.to_vec();
    for (i, &width) in model.hidden.iter().enumerate() {
        let mut h = linear(&x, w.get(&format!("l{i}.weight")), width);
        if model.norm {
            let mean = h.iter().sum::<f64>() / width as f64;
            let var = h.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / width as f64;
            let (gain, offset) = (w.get(&format!("l{i}.ln.gain")), w.get(&format!("l{i}.ln.offset")));
            for (j, v) in h.iter_mut().enumerate() {
                *v = (*v - mean) / (var + 1e-5).sqrt() * gain[j] + offset[j];
            }
        } else {
            for (v, b) in h.iter_mut().zip(w.get(&format!("l{i}.bias"))) {
                *v += b;
            }
        }
        x = h.into_iter().map(|v| v.max(0.0)).collect();
    }
    let mut q = linear(&x, w.get("head.weight"), model.classes);
    for (v, b) in q.iter_mut().zip(w.get("head.bias")) {
        *v += b;
    }
    q
}

/// The valid action of largest Q (the lowest among ties).
fn greedy(q: &[f64], valid: usize) -> u32 {
    (1..valid).fold(0, |best, k| if q[k] > q[best] { k } else { best }) as u32
}

/// One line drawing a CartPole state: the cart on its track and the pole's lean.
fn cartpole_line(step: u32, s: &[f64; 4]) -> String {
    let at = (((s[0] + 2.4) / 4.8) * (TRACK - 1) as f64)
        .round()
        .clamp(0.0, (TRACK - 1) as f64) as usize;
    let pole = if s[2] > 0.035 {
        '/'
    } else if s[2] < -0.035 {
        '\\'
    } else {
        '|'
    };
    let track: String = (0..TRACK).map(|i| if i == at { pole } else { '-' }).collect();
    format!("step {step:>3}  x {:+.3}  theta {:+.4}  [{track}]", s[0], s[2])
}

/// One line describing an Acrobot state: its angles and the tip's height.
fn acrobot_line(step: u32, s: &[f64; 4]) -> String {
    let height = -s[0].cos() - (s[0] + s[1]).cos();
    format!(
        "step {step:>3}  theta1 {:+.3}  theta2 {:+.3}  tip height {height:+.3} (goal above 1)",
        s[0], s[1]
    )
}

/// Plays one greedy episode of `kind` from environment 0's first start under
/// the run's seed; returns its lines.
fn play(cfg: &AgentConfig, model: &MlpConfig, w: &Weights, kind: Kind) -> Vec<String> {
    let mut twin = Twin::new(kind, cfg.seed, 0);
    let offsets = cfg.variant.offsets(cfg.seed);
    let mut lines = vec![format!("{} (greedy, x weights, offsets of level 0):", kind.name())];
    let mut total = 0.0;
    for step in 1..=MAX_STEPS {
        let state = twin.state;
        let features = cfg.variant.features(&twin.observation(), &offsets, 0);
        let obs: Vec<f64> = features.into_iter().map(f64::from).collect();
        let action = greedy(&q_values(model, w, &obs), kind.actions() as usize);
        let t = twin.step(action);
        total += t.reward;
        if step % EVERY == 1 {
            lines.push(match kind {
                Kind::CartPole => cartpole_line(step - 1, &state),
                Kind::Acrobot => acrobot_line(step - 1, &state),
            });
        }
        if t.done != 0 {
            let how = if t.done & TERMINATED != 0 {
                "terminated"
            } else {
                "truncated"
            };
            lines.push(format!("return {total} in {step} steps ({how})"));
            break;
        }
    }
    lines
}

/// One greedy episode of each environment of the run in `dir`, as text.
pub fn watch(dir: &Path) -> Result<Vec<String>> {
    let cfg = resume_config(dir)?;
    let path = checkpoint_path(dir);
    let loaded = checkpoint::load(&path)?;
    let model = cfg.model();
    let tensors = model
        .tensors()
        .iter()
        .map(|t| {
            let v = loaded.tensor_f32(&path, &format!("x.{}", t.name), &t.shape)?;
            Ok((t.name.clone(), v.into_iter().map(f64::from).collect()))
        })
        .collect::<Result<Vec<_>>>()?;
    let w = Weights(tensors);
    Ok(cfg
        .variant
        .kinds()
        .iter()
        .flat_map(|&k| play(&cfg, &model, &w, k))
        .collect())
}
