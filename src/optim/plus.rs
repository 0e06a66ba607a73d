//! sf_plus's device half: its state (Polyak step, lr_max, compensated W_sum, the
//! error flag), the passes that compute its step size from the loss before the
//! element pass, and the check that surfaces errors the device found.

use crate::arena::Arena;
use crate::error::{Error, Result};
use crate::gpu::buffers::{range, whole};
use crate::gpu::kernels::Entry;
use crate::gpu::{Dispatch, Gpu};
use crate::optim::config::OptimConfig;
use crate::optim::plan::{Grid, Plan};

/// The growth factor per step that lets sf_plus's step cap double at most once
/// per pass over the training data: `2^(1 / steps_per_epoch)`. This is the cap of
/// SPS_max with the smoothing rule `gamma_b = tau^(b/n) gamma_{k-1}`, tau = 2, of
/// Loizou et al. (2021), "Stochastic Polyak step-size for SGD", after Vaswani et
/// al. (2019); `b / n` (batch over examples) is one step's share of an epoch.
pub fn growth_per_step(steps_per_epoch: f64) -> f64 {
    2f64.powf(1.0 / steps_per_epoch.max(1.0))
}

/// sf_plus's device state, as WGSL `PlusState`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PlusState {
    /// e_hat of the previous step.
    pub e_prev: f32,
    /// Largest gamma so far.
    pub lr_max: f32,
    /// Sum of the averaging weights.
    pub w_sum: f32,
    /// Its Kahan compensation (true sum = w_sum - w_comp).
    pub w_comp: f32,
    /// sum |g| of the last step.
    pub l1: f32,
    /// sum g . (z - x) of the last step.
    pub dot: f32,
    /// The last Polyak step size.
    pub alpha: f32,
    /// 0 ok, 1 zero gradient, 2 non-finite loss, 3 non-finite step, 4 non-finite gradient norm.
    pub error: u32,
    /// Steps taken before the one at which the error appeared.
    pub error_step: u32,
    /// Steps taken on the device.
    pub steps: u32,
    /// 1.0: keeps shader compilers from folding the Kahan compensation away.
    pub one: f32,
    /// With `polyak_growth`: min(F / e_hat, cap) of the last step (its plain
    /// Polyak step, or its cap where that is 0); the next step's cap is this
    /// times the growth factor. 0 before the first step.
    pub alpha_cap: f32,
}

impl PlusState {
    /// The state before the first step.
    pub fn initial(cfg: &OptimConfig) -> Self {
        PlusState {
            lr_max: cfg.eps as f32,
            one: 1.0,
            ..Default::default()
        }
    }

    /// Its float fields by name (all but the error flag, counters and padding), in struct order.
    pub fn float_fields(&self) -> [(&'static str, f32); 9] {
        [
            ("e_prev", self.e_prev),
            ("lr_max", self.lr_max),
            ("w_sum", self.w_sum),
            ("w_comp", self.w_comp),
            ("l1", self.l1),
            ("dot", self.dot),
            ("alpha", self.alpha),
            ("one", self.one),
            ("alpha_cap", self.alpha_cap),
        ]
    }

    /// Reads the state from the bytes of the device buffer.
    pub fn from_bytes(bytes: &[u8]) -> PlusState {
        bytemuck::pod_read_unaligned(&bytes[..std::mem::size_of::<PlusState>()])
    }

    /// The error the device recorded, if any, as [`Error::Numerical`].
    pub fn error(&self) -> Result<()> {
        let what = match self.error {
            0 => return Ok(()),
            1 => "the gradient is all zero (e_hat = 0): the Polyak step is undefined",
            2 => "the loss is not finite",
            4 => "the gradient is not finite (its L1 norm is not)",
            _ => "the Polyak step is not finite",
        };
        Err(Error::Numerical(format!(
            "sf_plus, step {}: {what}; the weights were left as they were before it",
            self.error_step + 1
        )))
    }
}

/// The loss buffer, the state, and the passes before the element pass: the
/// chunk sums of |g| and g . (z - x) (two passes), their reduction, and the
/// scalar kernel.
pub(crate) struct PlusDevice {
    pub loss: wgpu::Buffer,
    pub state: wgpu::Buffer,
    pub passes: [Dispatch; 4],
}

impl PlusDevice {
    pub fn new(gpu: &Gpu, arena: &Arena, plan: &Plan, cfg: &OptimConfig) -> Result<PlusDevice> {
        let loss = gpu.storage("loss", 16);
        let state = gpu.storage_init("sf_plus state", &[PlusState::initial(cfg)]);
        let sums = plan.per_segment(gpu, arena, Entry::PLUS_SUMS, &[], Grid::Chunks)?;
        let n_chunks = arena.layout.chunks.len() as u64;
        let reduce = gpu.dispatch(
            "polyak",
            "plus_reduce",
            &[(8, range(&plan.partials, 0, 8 * n_chunks)), (11, whole(&state))],
            [1, 1, 1],
        )?;
        let scalars = gpu.dispatch(
            "polyak",
            "plus_scalars",
            &[(0, whole(&plan.step_buf)), (11, whole(&state)), (12, whole(&loss))],
            [1, 1, 1],
        )?;
        Ok(PlusDevice {
            loss,
            state,
            passes: [sums, plan.chunk_sums.clone(), reduce, scalars],
        })
    }
}

/// Runs sf_plus's device recurrences (lr_max, compensated W_sum, c) for
/// `alphas.len()` steps driven by the given Polyak step sizes (gamma = lr * alpha,
/// no c warmup, t^r from the host as in training), with the same code the scalar
/// kernel uses, and returns (lr_max, W_sum, c) after every step. Used to check
/// them against f64.
#[cfg(not(target_arch = "wasm32"))]
pub fn trace_plus_scalars(gpu: &Gpu, cfg: &OptimConfig, alphas: &[f32]) -> Result<Vec<[f32; 3]>> {
    use crate::optim::scalars::StepScalars;

    #[repr(C)]
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    struct TraceInfo {
        n: u32,
        pad: [u32; 3],
    }
    let scalars = StepScalars {
        lr: cfg.lr().max(cfg.eps) as f32,
        p: cfg.weight_lr_power as f32,
        ..Default::default()
    };
    let step_buf = gpu.storage_init("step", &[scalars]);
    let state = gpu.storage_init("sf_plus state", &[PlusState::initial(cfg)]);
    let info = gpu.uniform(
        "trace",
        &TraceInfo {
            n: alphas.len() as u32,
            pad: [0; 3],
        },
    );
    let inputs: Vec<[f32; 2]> = (0..alphas.len())
        .map(|k| [alphas[k], ((k + 1) as f64).powf(cfg.r) as f32])
        .collect();
    let alpha_buf = gpu.storage_init("alphas", &inputs);
    let out = gpu.storage("trace", 16 * alphas.len() as u64);
    let res = [
        (0, whole(&step_buf)),
        (11, whole(&state)),
        (14, whole(&info)),
        (15, whole(&alpha_buf)),
        (16, whole(&out)),
    ];
    let pass = gpu.dispatch("polyak", "plus_trace", &res, [1, 1, 1])?;
    gpu.run(&[&pass]);
    let rows: Vec<[f32; 4]> = gpu.read(&out, 0, alphas.len())?;
    Ok(rows.into_iter().map(|r| [r[0], r[1], r[2]]).collect())
}
