//! Per-step scalars computed on the host in f64 and uploaded once per step.
//!
//! [`StepScalars`] mirrors the WGSL `Step` struct of `shaders/common.wgsl`. For
//! `sf_plus` the host fills in what does not depend on device data (beta_k, bias
//! corrections, t^r); the scalar kernel adds gamma and c on the device.

use crate::optim::bf16::Rounding;
use crate::optim::config::{Kind, OptimConfig};

/// `max(c, 1 / window)` when a window is set (`window` 0: `c` unchanged): the
/// averaging weight never falls below `1 / window`, so x reaches back about
/// `window` steps instead of the whole run.
pub fn window_floor(c: f64, window: u64) -> f64 {
    if window == 0 {
        c
    } else {
        c.max(1.0 / window as f64)
    }
}

/// The scalars one step's kernels read (layout of WGSL `Step`).
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable, serde::Serialize, serde::Deserialize,
)]
pub struct StepScalars {
    /// Step size (adamw: lr_k).
    pub gamma: f32,
    /// Averaging weight of z into x.
    pub c: f32,
    /// Interpolation weight: y = beta x + (1 - beta) z.
    pub beta: f32,
    /// Weight decay.
    pub wd: f32,
    /// Adam beta1.
    pub b1: f32,
    /// Adam beta2.
    pub b2: f32,
    /// 1 / (1 - b1^t).
    pub inv_bc1: f32,
    /// 1 / (1 - b2^t) (1 for adamw_sf_paper).
    pub inv_bc2: f32,
    /// Adam epsilon.
    pub eps: f32,
    /// radam_sf: 1 once the variance is trusted; 1 for the other Adam kinds.
    pub adaptive: f32,
    /// Inner momentum of adamw_sf.
    pub mu: f32,
    /// 1 / (1 - mu^t).
    pub inv_bcmu: f32,
    /// sf_plus: max(lr, eps).
    pub lr: f32,
    /// sf_plus: t^r.
    pub t_pow_r: f32,
    /// sf_plus: weight_lr_power.
    pub p: f32,
    /// sf_plus: EMA factor of the gradient-norm estimate.
    pub polyak_beta: f32,
    /// sf_plus: 1 / (1 - polyak_beta^t).
    pub inv_bcp: f32,
    /// sf_plus: 1 while k < c_warmup.
    pub warm: f32,
    /// sf_plus: set by the device when a step must not touch the weights.
    pub skip: u32,
    /// This step's number, from 1 (saturating at `u32::MAX`): what the health flags record.
    pub step: u32,
    /// sf_plus: the Polyak step's largest growth factor per step (0: no cap, the reference).
    pub growth: f32,
    /// bf16 state: `state_seed`, the seed of stochastic rounding's bits (0 for f32 state).
    #[serde(default)]
    pub seed: u32,
    /// bf16 state: 0 stochastic rounding, 1 to nearest.
    #[serde(default)]
    pub rounding: u32,
    /// Padding to 16 bytes (not serialized).
    #[serde(skip)]
    pub pad: u32,
}

impl StepScalars {
    /// Its float fields by name (all but `skip` and the padding), in struct order.
    pub fn float_fields(&self) -> [(&'static str, f32); 19] {
        [
            ("gamma", self.gamma),
            ("c", self.c),
            ("beta", self.beta),
            ("wd", self.wd),
            ("b1", self.b1),
            ("b2", self.b2),
            ("inv_bc1", self.inv_bc1),
            ("inv_bc2", self.inv_bc2),
            ("eps", self.eps),
            ("adaptive", self.adaptive),
            ("mu", self.mu),
            ("inv_bcmu", self.inv_bcmu),
            ("lr", self.lr),
            ("t_pow_r", self.t_pow_r),
            ("p", self.p),
            ("polyak_beta", self.polyak_beta),
            ("inv_bcp", self.inv_bcp),
            ("warm", self.warm),
            ("growth", self.growth),
        ]
    }
}

/// The host's running state of the scalar recurrences (warmup, lr_max, W_sum).
/// It serializes exactly (f64 round-trips through JSON), for checkpoints.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostScalars {
    cfg: OptimConfig,
    k: u64,
    lr_max: f64,
    w_sum: f64,
    w_comp: f64,
    last: StepScalars,
}

impl HostScalars {
    /// The state before the first step.
    pub fn new(cfg: &OptimConfig) -> Self {
        let mut s = HostScalars {
            cfg: cfg.clone(),
            k: 0,
            lr_max: -1.0,
            w_sum: 0.0,
            w_comp: 0.0,
            last: StepScalars::default(),
        };
        s.last.beta = s.beta(0) as f32;
        s
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.k
    }

    /// The configuration these scalars follow.
    pub fn config(&self) -> &OptimConfig {
        &self.cfg
    }

    /// The largest gamma so far (-1 before the first step).
    pub fn lr_max(&self) -> f64 {
        self.lr_max
    }

    /// Running sum of the averaging weights (f64, compensated).
    pub fn w_sum(&self) -> f64 {
        self.w_sum + self.w_comp
    }

    /// Its float fields by name (`last.*`: the last step's scalars), in struct
    /// order: a checkpoint's are checked finite on load.
    pub fn float_fields(&self) -> Vec<(String, f64)> {
        let mut v = vec![
            ("lr_max".to_string(), self.lr_max),
            ("w_sum".to_string(), self.w_sum),
            ("w_comp".to_string(), self.w_comp),
        ];
        v.extend(
            self.last
                .float_fields()
                .into_iter()
                .map(|(n, x)| (format!("last.{n}"), x as f64)),
        );
        v
    }

    /// The scalars of the last step (before any step: only `beta` is set).
    pub fn last(&self) -> StepScalars {
        self.last
    }

    /// The interpolation weight of step k (beta_k for sf_plus).
    fn beta(&self, k: u64) -> f64 {
        let c = &self.cfg;
        match c.kind {
            Kind::SfPlus => {
                let q = if c.sf_beta1_anneal_steps == 0 {
                    1.0
                } else {
                    (k as f64 / c.sf_beta1_anneal_steps as f64).min(1.0)
                };
                let (lo, hi) = if c.sf_beta1_anneal_steps == 0 {
                    (c.sf_beta1, c.sf_beta1)
                } else {
                    (c.sf_beta1, c.sf_beta1_max)
                };
                1.0 - ((1.0 - q) * (1.0 - lo).ln() + q * (1.0 - hi).ln()).exp()
            }
            Kind::Adamw => 1.0,
            _ => c.sf_beta(),
        }
    }

    /// lr_max, W_sum (Neumaier-compensated) and c for a step of size `gamma`.
    fn average_weight(&mut self, gamma: f64, t: f64) -> f64 {
        self.lr_max = self.lr_max.max(gamma);
        let w = t.powf(self.cfg.r) * self.lr_max.powf(self.cfg.weight_lr_power);
        let sum = self.w_sum + w;
        if self.w_sum.abs() >= w.abs() {
            self.w_comp += (self.w_sum - sum) + w;
        } else {
            self.w_comp += (w - sum) + self.w_sum;
        }
        self.w_sum = sum;
        let total = self.w_sum();
        if total == 0.0 {
            0.0
        } else {
            window_floor(w / total, self.cfg.sf_window)
        }
    }

    /// The scalars of the next step; advances the step counter.
    pub fn next_step(&mut self) -> StepScalars {
        let c = self.cfg.clone();
        let k = self.k;
        let t = (k + 1) as f64;
        let (b1, b2) = c.betas();
        let lr = c.lr();
        let sched = if c.warmup_steps > 0 && k < c.warmup_steps {
            t / c.warmup_steps as f64
        } else {
            1.0
        };
        let bc2 = 1.0 - b2.powf(t);
        let mut s = StepScalars {
            beta: self.beta(k) as f32,
            wd: c.weight_decay as f32,
            b1: b1 as f32,
            b2: b2 as f32,
            inv_bc1: (1.0 / (1.0 - b1.powf(t))) as f32,
            inv_bc2: (1.0 / bc2) as f32,
            eps: c.eps as f32,
            adaptive: 1.0,
            step: u32::try_from(k + 1).unwrap_or(u32::MAX),
            seed: c.state_seed,
            rounding: u32::from(c.state_rounding == Rounding::Nearest),
            ..Default::default()
        };
        match c.kind {
            Kind::SgdSf | Kind::AdamwSf => {
                let gamma = lr * sched;
                s.gamma = gamma as f32;
                s.c = self.average_weight(gamma, t) as f32;
                if c.inner_momentum > 0.0 {
                    s.mu = c.inner_momentum as f32;
                    s.inv_bcmu = (1.0 / (1.0 - c.inner_momentum.powf(t))) as f32;
                }
            }
            Kind::AdamwSfPaper => {
                let gamma = lr * sched * bc2.sqrt();
                s.gamma = gamma as f32;
                s.c = self.average_weight(gamma, t) as f32;
                s.inv_bc2 = 1.0;
            }
            Kind::RadamSf => {
                let rho_inf = 2.0 / (1.0 - b2) - 1.0;
                let rho_t = rho_inf - 2.0 * t * b2.powf(t) / bc2;
                let rect = if rho_t > 4.0 {
                    ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)).sqrt()
                } else if c.silent_sgd_phase {
                    0.0
                } else {
                    1.0
                };
                s.adaptive = if rho_t > 4.0 { 1.0 } else { 0.0 };
                let gamma = lr * rect;
                s.gamma = gamma as f32;
                s.c = self.average_weight(gamma, t) as f32;
            }
            Kind::SfPlus => {
                s.lr = lr.max(c.eps) as f32;
                s.t_pow_r = t.powf(c.r) as f32;
                s.p = c.weight_lr_power as f32;
                s.polyak_beta = c.polyak_beta as f32;
                s.inv_bcp = (1.0 / (1.0 - c.polyak_beta.powf(t))) as f32;
                s.warm = if k < c.c_warmup { 1.0 } else { 0.0 };
                s.growth = c.polyak_growth.unwrap_or(0.0) as f32;
            }
            Kind::Adamw => {
                s.gamma = (lr * c.schedule.multiplier(k)) as f32;
            }
        }
        self.k += 1;
        self.last = s;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_is_one_over_t_without_warmup() {
        let mut h = HostScalars::new(&OptimConfig::new(Kind::SgdSf).with_lr(0.1));
        for t in 1..=100 {
            let s = h.next_step();
            assert!((s.c as f64 - 1.0 / t as f64).abs() < 1e-7, "t={t}: c={}", s.c);
        }
    }

    /// With a window W (no warmup, r = 0) c follows the paper's 1/t until t = W, then stays at 1/W.
    #[test]
    fn a_window_floors_c_at_one_over_w() {
        let mut cfg = OptimConfig::new(Kind::AdamwSf).with_lr(0.01);
        cfg.sf_window = 25;
        let mut h = HostScalars::new(&cfg);
        for t in 1..=200u64 {
            let s = h.next_step();
            let want = 1.0 / t.min(25) as f64;
            assert!((s.c as f64 - want).abs() < 1e-7, "t={t}: c={}", s.c);
        }
    }

    /// Checkpoints keep the host scalars as JSON: every f64 must come back bit for
    /// bit (serde_json's default parser may miss the last digit; `float_roundtrip`).
    #[test]
    fn host_scalars_round_trip_through_json_exactly() {
        for kind in Kind::ALL {
            let mut cfg = OptimConfig::new(kind).with_lr(0.0027);
            cfg.warmup_steps = 7;
            let mut h = HostScalars::new(&cfg);
            for _ in 0..3000 {
                h.next_step();
                let json = serde_json::to_string(&h).unwrap();
                let back: HostScalars = serde_json::from_str(&json).unwrap();
                assert!(back == h, "{kind} after {} steps: {json}", h.steps());
            }
        }
    }

    #[test]
    fn w_sum_accurate_after_a_million_steps() {
        // r = 0.5: w_t = sqrt(t) lr^2, sum = lr^2 * sum sqrt(t), summed exactly below in pairs.
        let mut cfg = OptimConfig::new(Kind::AdamwSf).with_lr(0.003);
        cfg.r = 0.5;
        let mut h = HostScalars::new(&cfg);
        let n = 1_000_000u64;
        for _ in 0..n {
            h.next_step();
        }
        // Reference: the same series summed from the small terms up, in two halves.
        let terms: Vec<f64> = (1..=n).map(|t| (t as f64).sqrt() * 0.003f64.powi(2)).collect();
        let exact: f64 = terms.chunks(1000).map(|c| c.iter().sum::<f64>()).sum();
        let rel = (h.w_sum() - exact).abs() / exact;
        assert!(rel < 1e-9, "relative error {rel}");
    }
}
