//! The optimizer's plan on the device: the tables its kernels read (segments,
//! the chunk passes' pieces and chunks, the per-step scalars) and the binding
//! resources of each arena segment, from which every per-segment dispatch is built.

use crate::arena::{Arena, Segment};
use crate::error::Result;
use crate::gpu::buffers::{range, whole};
use crate::gpu::kernels::Entry;
use crate::gpu::{Dispatch, Gpu, Resource};
use crate::optim::chunks::{ChunkTables, LANES};
use crate::optim::health::Health;
use crate::optim::scalars::StepScalars;
use crate::optim::spec::State;

/// Steps that may be recorded between two submissions (slots of the scalar ring).
pub const RING: usize = 64;
/// Bytes of one slot of the scalar ring.
pub(crate) const SLOT: u64 = 256;
/// Workgroups of an element pass at most (each loops over the rest).
pub const MAX_WORKGROUPS: u32 = 4096;
/// vec4s each invocation of an element pass handles while MAX_WORKGROUPS allows:
/// `ELEM_RUN` of the element kernels (shaders/elementwise.wgsl), so that a workgroup
/// sweeps one tile of 256 * 8 vec4s (BENCHMARKS.md, "levers").
const VEC4_PER_INVOCATION: usize = 8;

/// WGSL `Seg`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SegInfo {
    n_vec4: u32,
    wd_end: u32,
    piece_base: u32,
    first_vec4: u32,
    state_base: u32,
    pad: [u32; 3],
}

/// Workgroups of an element pass over `n_vec4` vec4s.
pub(crate) fn elem_workgroups(n_vec4: usize) -> u32 {
    (n_vec4.div_ceil(256 * VEC4_PER_INVOCATION) as u32).min(MAX_WORKGROUPS)
}

/// How a per-segment pass is laid out over its segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grid {
    /// An element pass: each invocation sweeps 8 vec4s (see [`elem_workgroups`]).
    Elements,
    /// A chunk pass: each group of 8 invocations sweeps one piece (see [`crate::optim::chunks`]).
    Chunks,
}

/// The device tables of one optimizer over one arena, and its state buffers.
pub(crate) struct Plan {
    pub segments: Vec<Segment>,
    /// Each segment's workgroups in a chunk pass.
    chunk_workgroups: Vec<u32>,
    /// The current step's scalars (WGSL `Step`), copied from the ring each step.
    pub step_buf: wgpu::Buffer,
    /// [`RING`] slots of scalars written ahead by the host.
    pub ring: wgpu::Buffer,
    seg_bufs: Vec<wgpu::Buffer>,
    pieces: wgpu::Buffer,
    /// The chunk passes' partial sums, one per invocation (8 per piece slot).
    lanes: wgpu::Buffer,
    /// The partial sum of each chunk, from `chunk_sums`.
    pub partials: wgpu::Buffer,
    /// Adds each chunk's invocation partials into `partials`; recorded after every
    /// pass that writes them.
    pub chunk_sums: Dispatch,
    /// The kind's state buffers, in its spec's order.
    pub state: Vec<(State, wgpu::Buffer)>,
    /// The health flags the step's passes set ([`Health`]).
    pub health: wgpu::Buffer,
    /// Whether the state buffers hold bf16 (two to a word; `shaders/state_bf16.wgsl`).
    pub bf16: bool,
    /// bf16 state: each segment's binding range of a state buffer (offset,
    /// size), from an offset the device can bind at.
    state_ranges: Vec<(u64, u64)>,
}

/// Each segment's binding range (offset, size) in a bf16 state buffer: from the
/// aligned offset at or below its first word (its vec4 i is then word pair
/// `state_base + i` there). The alignment is 256, the largest WebGPU allows a
/// device to ask, whatever this one asks: every device then binds the same ranges
/// (and lavapipe, which asks less, runs the unaligned case the browsers do).
pub fn bf16_ranges(gpu: &Gpu, segments: &[Segment]) -> Vec<(u64, u64)> {
    let align = u64::from(gpu.device.limits().min_storage_buffer_offset_alignment).max(256);
    segments
        .iter()
        .map(|s| {
            let start = s.start as u64 * 2;
            let from = start / align * align;
            (from, s.len as u64 * 2 + (start - from))
        })
        .collect()
}

impl Plan {
    /// Uploads the tables; `group_of_tensor` gives each tensor's NaP group (or
    /// `NO_GROUP`); state buffers that start at the parameters are copied from them.
    /// With `bf16`, the state buffers hold bf16 and start at the parameters
    /// rounded to nearest (z, x) or at 0.
    pub fn new(
        gpu: &Gpu,
        arena: &Arena,
        state: &[State],
        group_of_tensor: &[u32],
        first: StepScalars,
        bf16: bool,
    ) -> Result<Plan> {
        let layout = &arena.layout;
        let tables = ChunkTables::new(layout, group_of_tensor);
        let bytes = layout.bytes();
        let state_ranges = bf16_ranges(gpu, &layout.segments);
        let state = state
            .iter()
            .map(|&s| {
                let b = gpu.storage(s.name(), if bf16 { bytes / 2 } else { bytes });
                if s.starts_at_params() && !bf16 {
                    gpu.submit(|enc| enc.copy_buffer_to_buffer(&arena.params, 0, &b, 0, bytes));
                }
                (s, b)
            })
            .collect();
        let seg_bufs = layout
            .segments
            .iter()
            .zip(&tables.segments)
            .zip(&state_ranges)
            .map(|((s, &(piece_base, _)), &(from, _))| {
                let info = SegInfo {
                    n_vec4: (s.len / 4) as u32,
                    wd_end: ((layout.wd_end.clamp(s.start, s.start + s.len) - s.start) / 4) as u32,
                    piece_base,
                    first_vec4: (s.start / 4) as u32,
                    state_base: if bf16 {
                        ((s.start as u64 * 2 - from) / 8) as u32
                    } else {
                        0
                    },
                    pad: [0; 3],
                };
                gpu.uniform("segment", &info)
            })
            .collect();
        let lanes = gpu.storage("lane partials", (8 * LANES * tables.pieces.len()) as u64);
        let partials = gpu.storage("partials", 8 * layout.chunks.len() as u64);
        let chunks = gpu.storage_init("chunks", &tables.chunks);
        let chunk_sums = gpu.dispatch(
            "chunks",
            "chunk_sums",
            &[(8, whole(&partials)), (20, whole(&lanes)), (21, whole(&chunks))],
            [tables.chunks.len().div_ceil(64) as u32, 1, 1],
        )?;
        let plan = Plan {
            segments: layout.segments.clone(),
            chunk_workgroups: tables.segments.iter().map(|s| s.1).collect(),
            step_buf: gpu.storage_init("step", &[first]),
            ring: gpu.storage("step ring", SLOT * RING as u64),
            seg_bufs,
            pieces: gpu.storage_init("pieces", &tables.pieces),
            lanes,
            partials,
            chunk_sums,
            state,
            health: gpu.storage_init("health", &[Health::CLEAR]),
            bf16,
            state_ranges,
        };
        if bf16 {
            for (s, entry) in [(State::Z, Entry::Z_FROM_PARAMS), (State::X, Entry::X_FROM_PARAMS)] {
                if plan.get(s).is_some() {
                    gpu.run(&[&plan.per_segment(gpu, arena, entry, &[], Grid::Elements)?]);
                }
            }
        }
        Ok(plan)
    }

    /// State buffer `s`, if the kind keeps it.
    pub fn get(&self, s: State) -> Option<&wgpu::Buffer> {
        self.state.iter().find(|(k, _)| *k == s).map(|(_, b)| b)
    }

    /// The bindings of segment `i`: 0 step, 1 segment, 2 y, 3 g, 8 partials,
    /// 9 pieces, 19 health, 20 invocation partials and each state buffer at its
    /// own binding, then `extra`.
    pub fn resources<'a>(&'a self, arena: &'a Arena, i: usize, extra: &[Resource<'a>]) -> Vec<Resource<'a>> {
        let s = &self.segments[i];
        let (o, n) = (s.start as u64 * 4, s.len as u64 * 4);
        let mut r = vec![
            (0, whole(&self.step_buf)),
            (1, whole(&self.seg_bufs[i])),
            (2, range(&arena.params, o, n)),
            (3, range(&arena.grads, o, n)),
            (8, whole(&self.partials)),
            (9, whole(&self.pieces)),
            (19, whole(&self.health)),
            (20, whole(&self.lanes)),
        ];
        let (so, sn) = if self.bf16 { self.state_ranges[i] } else { (o, n) };
        r.extend(self.state.iter().map(|(s, b)| (s.binding(), range(b, so, sn))));
        r.extend(extra.iter().cloned());
        r
    }

    /// One call of `file::entry` per segment, with a grid of `grid`'s kind.
    pub fn per_segment(
        &self,
        gpu: &Gpu,
        arena: &Arena,
        entry: Entry,
        extra: &[Resource<'_>],
        grid: Grid,
    ) -> Result<Dispatch> {
        let groups = |i: usize| match grid {
            Grid::Elements => elem_workgroups(self.segments[i].len / 4),
            Grid::Chunks => self.chunk_workgroups[i],
        };
        let entry = entry.with_state(self.bf16);
        gpu.dispatch_each(
            entry.file,
            entry.name,
            (0..self.segments.len()).map(|i| (self.resources(arena, i, extra), [groups(i), 1, 1])),
        )
    }
}
