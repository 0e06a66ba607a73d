//! NaP (Normalize-and-Project): groups of tensors kept at their initial norm.
//!
//! After every optimizer step each group `G` is projected back to the norm `rho_G`
//! it had at registration: `proj(v) = rho_G * v / max(||v||_G, 1e-12)`. The kernels
//! live in `shaders/nap.wgsl`; this module holds the configuration and the host-side
//! bookkeeping.

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

use crate::arena::Layout;
use crate::error::{Error, Result};

/// vec4s per NaP chunk (must match `CHUNK` in `shaders/nap.wgsl`).
pub const CHUNK_VEC4: usize = 1024;

/// A chunk row of the kernels' table: offset and length (vec4s, within the
/// segment) and group.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ChunkRow {
    /// First vec4, relative to the segment.
    pub offset: u32,
    /// vec4s in the chunk.
    pub len: u32,
    /// Group index.
    pub group: u32,
    /// Padding.
    pub pad0: u32,
}

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

/// How NaP's work is cut for a given arena layout.
#[derive(Debug, Clone, PartialEq)]
pub struct NapPlan {
    /// Tensor names of each group.
    pub groups: Vec<Vec<String>>,
    /// Explicit rho per group (None: measured at registration).
    pub rho: Vec<Option<f64>>,
    /// All chunks, segment by segment.
    pub chunks: Vec<ChunkRow>,
    /// (first chunk, number of chunks) of each segment.
    pub seg_chunks: Vec<(u32, u32)>,
    /// Chunk ids grouped by group, in increasing order within a group.
    pub chunk_ids: Vec<u32>,
    /// (start, end) into `chunk_ids` per group.
    pub ranges: Vec<(u32, u32)>,
}

impl NapPlan {
    /// Cuts every grouped tensor into chunks that do not cross segments.
    pub fn new(layout: &Layout, cfg: &NapConfig) -> Result<NapPlan> {
        let mut group_of = std::collections::HashMap::new();
        for (gi, g) in cfg.groups.iter().enumerate() {
            if g.tensors.is_empty() {
                return Err(Error::invalid(format!("nap.groups[{gi}].tensors"), "must not be empty"));
            }
            for t in &g.tensors {
                layout.slot(t).map_err(|_| {
                    Error::invalid(format!("nap.groups[{gi}].tensors"), format!("no tensor `{t}` in the arena"))
                })?;
                if group_of.insert(t.as_str(), gi).is_some() {
                    return Err(Error::invalid(
                        format!("nap.groups[{gi}].tensors"),
                        format!("tensor `{t}` is in two groups"),
                    ));
                }
            }
        }
        let mut chunks = Vec::new();
        let mut seg_chunks = Vec::new();
        for seg in &layout.segments {
            let base = chunks.len() as u32;
            let mut slots: Vec<_> = layout.slots.iter().filter(|s| group_of.contains_key(s.name.as_str())).collect();
            slots.sort_by_key(|s| s.offset);
            for slot in slots {
                let lo = slot.offset.max(seg.start);
                let hi = (slot.offset + slot.len).min(seg.start + seg.len);
                let mut at = lo;
                while at < hi {
                    let len = (hi - at).min(CHUNK_VEC4 * 4);
                    chunks.push(ChunkRow {
                        offset: ((at - seg.start) / 4) as u32,
                        len: len.div_ceil(4) as u32,
                        group: group_of[slot.name.as_str()] as u32,
                        pad0: 0,
                    });
                    at += len;
                }
            }
            let count = chunks.len() as u32 - base;
            if count > 65535 {
                return Err(Error::invalid(
                    "nap",
                    format!("{count} chunks in one segment: more than one dispatch can hold (65535)"),
                ));
            }
            seg_chunks.push((base, count));
        }
        let mut chunk_ids = Vec::new();
        let mut ranges = Vec::new();
        for gi in 0..cfg.groups.len() {
            let start = chunk_ids.len() as u32;
            chunk_ids.extend((0..chunks.len() as u32).filter(|&c| chunks[c as usize].group == gi as u32));
            ranges.push((start, chunk_ids.len() as u32));
        }
        Ok(NapPlan {
            groups: cfg.groups.iter().map(|g| g.tensors.clone()).collect(),
            rho: cfg.groups.iter().map(|g| g.rho).collect(),
            chunks,
            seg_chunks,
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
