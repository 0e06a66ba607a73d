//! NaP (Normalize-and-Project): groups of tensors kept at their initial norm.
//!
//! After every optimizer step each group `G` is projected back to the norm `rho_G`
//! it had at registration: `proj(v) = rho_G * v / max(||v||_G, 1e-12)`. The kernels
//! live in `shaders/nap.wgsl`; this module holds the configuration and the host-side
//! bookkeeping; [`crate::optim`] runs the passes on the GPU after each step.

use serde::{Deserialize, Serialize};

/// One group of tensors projected together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NapGroup {
    /// Names of the tensors in the group.
    pub tensors: Vec<String>,
    /// Target norm; `None` means the group's Frobenius norm at registration.
    #[serde(default)]
    pub rho: Option<f64>,
}

/// The groups of a model (the replay file's `nap` object).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NapConfig {
    /// The groups; a tensor may belong to at most one.
    pub groups: Vec<NapGroup>,
}

/// The smallest norm a projection divides by.
pub const MIN_NORM: f64 = 1e-12;

/// The range of an explicit `rho`: the group's squared norm (`rho^2` after a
/// projection) is summed in f32, so `rho^2` must stay inside f32, and the
/// effective learning rate divides by it.
pub const RHO_RANGE: (f64, f64) = (1e-18, 1e18);

/// Checks an explicit `rho` against [`RHO_RANGE`]; the error says what is wrong.
pub fn check_rho(rho: f64) -> std::result::Result<(), String> {
    let (lo, hi) = RHO_RANGE;
    if rho.is_finite() && (lo..=hi).contains(&rho) {
        Ok(())
    } else {
        Err(format!("must be a number in [{lo:e}, {hi:e}], got {rho:e}"))
    }
}

use crate::arena::Layout;
use crate::error::{Error, Result};

/// Group index of chunks outside every group (must match `NO_GROUP` in the shaders).
pub const NO_GROUP: u32 = u32::MAX;

/// A group row of the kernels' table: its chunk ids are `chunk_ids[start..end]`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GroupRow {
    /// First entry in the chunk-id list.
    pub start: u32,
    /// One past the last entry.
    pub end: u32,
    /// Target norm.
    pub rho: f32,
    /// Padding.
    pub pad0: u32,
}

/// NaP's groups resolved against an arena layout.
#[derive(Debug, Clone, PartialEq)]
pub struct NapPlan {
    /// Tensor names of each group.
    pub groups: Vec<Vec<String>>,
    /// Explicit rho per group (None: measured at registration).
    pub rho: Vec<Option<f64>>,
    /// Group of each tensor (in layout order), or [`NO_GROUP`].
    pub group_of_tensor: Vec<u32>,
    /// Chunk ids grouped by group, in increasing order within a group.
    pub chunk_ids: Vec<u32>,
    /// (start, end) into `chunk_ids` per group.
    pub ranges: Vec<(u32, u32)>,
}

impl NapPlan {
    /// Checks the groups against the layout and lists each group's chunks.
    pub fn new(layout: &Layout, cfg: &NapConfig) -> Result<NapPlan> {
        let mut group_of_tensor = vec![NO_GROUP; layout.slots.len()];
        for (gi, g) in cfg.groups.iter().enumerate() {
            let field = format!("nap.groups[{gi}].tensors");
            if g.tensors.is_empty() {
                return Err(Error::invalid(field, "must not be empty"));
            }
            for t in &g.tensors {
                let Some(ti) = layout.slots.iter().position(|s| &s.name == t) else {
                    return Err(Error::invalid(field, format!("no tensor `{t}` in the arena")));
                };
                if group_of_tensor[ti] != NO_GROUP {
                    return Err(Error::invalid(field, format!("tensor `{t}` is in two groups")));
                }
                group_of_tensor[ti] = gi as u32;
            }
            if let Some(rho) = g.rho {
                check_rho(rho).map_err(|msg| Error::invalid(format!("nap.groups[{gi}].rho"), msg))?;
            }
        }
        let mut chunk_ids = Vec::new();
        let mut ranges = Vec::new();
        for gi in 0..cfg.groups.len() as u32 {
            let start = chunk_ids.len() as u32;
            let ids = layout
                .chunks
                .iter()
                .enumerate()
                .filter(|(_, c)| group_of_tensor[c.tensor] == gi);
            chunk_ids.extend(ids.map(|(i, _)| i as u32));
            ranges.push((start, chunk_ids.len() as u32));
        }
        Ok(NapPlan {
            groups: cfg.groups.iter().map(|g| g.tensors.clone()).collect(),
            rho: cfg.groups.iter().map(|g| g.rho).collect(),
            group_of_tensor,
            chunk_ids,
            ranges,
        })
    }
}

/// What NaP reports of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupReport {
    /// Tensor names.
    pub tensors: Vec<String>,
    /// Target norm.
    pub rho: f64,
    /// Current Frobenius norm of z (adamw: of the weights).
    pub norm_z: f64,
    /// Current Frobenius norm of x (adamw: of the weights).
    pub norm_x: f64,
    /// Effective learning rate: gamma / rho^2 (SGD kinds) or gamma / rho (Adam kinds).
    pub effective_lr: f64,
}
