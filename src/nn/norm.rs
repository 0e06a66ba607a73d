//! LayerNorm and RMSNorm over the last dimension (`shaders/norm.wgsl`).

use super::{
    check_param, check_view, dim, groups_for, groups_for_64, groups_for_rows, layer_dispatch, read, record_all, write,
    Dispatch, Param, View,
};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Recorder};

/// Which normalization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormKind {
    /// `(x - mean) / sqrt(var + eps)`, var the biased variance over the row.
    Layer,
    /// `x / sqrt(mean(x²) + eps)`.
    Rms,
}

/// Shapes and buffers of a [`Norm`] layer.
pub struct NormDesc<'a> {
    /// LayerNorm or RMSNorm.
    pub kind: NormKind,
    /// Rows R normalized independently.
    pub rows: usize,
    /// Length C of each row (the last dimension).
    pub dim: usize,
    /// Added to the variance (or mean square); positive.
    pub eps: f32,
    /// Input x `[rows, dim]`.
    pub x: View<'a>,
    /// Output y `[rows, dim]`.
    pub y: View<'a>,
    /// Gradient with respect to y `[rows, dim]`, read by the backward pass.
    pub dy: View<'a>,
    /// Gradient with respect to x `[rows, dim]`, written by the backward pass; `None` to skip it.
    pub dx: Option<View<'a>>,
    /// Gain g `[dim]` (y = x̂ g + o), or none (g = 1).
    pub gain: Option<Param<'a>>,
    /// Offset o `[dim]`, or none (o = 0).
    pub offset: Option<Param<'a>>,
}

/// Longest row that takes one invocation (no barriers: cheap on CPU drivers,
/// where every barrier switches between the invocations of a workgroup); longer
/// rows take one workgroup each.
pub const SHORT_ROWS: usize = 256;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct NormDims {
    rows: u32,
    dim: u32,
    center: u32,
    has_gain: u32,
    has_offset: u32,
    eps: f32,
    pad0: u32,
    pad1: u32,
}

/// LayerNorm or RMSNorm of each row of x `[R, C]`, with optional gain and offset `[C]`.
///
/// Forward: y, and the row's mean and 1/std kept in buffers the layer owns.
/// Backward overwrites dx, and dgain = Σ_rows dy x̂, doffset = Σ_rows dy (one
/// invocation per column, rows in increasing order: deterministic, no atomics).
/// Rows of up to [`SHORT_ROWS`] elements take one invocation each (summed in
/// increasing order, no barriers); longer rows one workgroup each (a fixed tree).
pub struct Norm {
    forward: Vec<Dispatch>,
    backward: Vec<Dispatch>,
    _scratch: [wgpu::Buffer; 3],
}

impl Norm {
    /// Builds the pipelines and bind groups; checks every view against the shapes.
    pub fn new(gpu: &Gpu, desc: &NormDesc<'_>) -> Result<Norm> {
        let layer = match desc.kind {
            NormKind::Layer => "layer_norm",
            NormKind::Rms => "rms_norm",
        };
        let rows = dim(layer, "rows", desc.rows)?;
        let n = dim(layer, "dim", desc.dim)?;
        if !(desc.eps.is_finite() && desc.eps > 0.0) {
            return Err(Error::invalid(
                format!("{layer}.eps"),
                format!("{} must be positive and finite", desc.eps),
            ));
        }
        let shape = [desc.rows, desc.dim];
        check_view(gpu, layer, "x", &desc.x, &shape)?;
        check_view(gpu, layer, "y", &desc.y, &shape)?;
        check_view(gpu, layer, "dy", &desc.dy, &shape)?;
        if let Some(dx) = &desc.dx {
            check_view(gpu, layer, "dx", dx, &shape)?;
        }
        if let Some(g) = &desc.gain {
            check_param(gpu, layer, "gain", g, &[desc.dim])?;
        }
        if let Some(o) = &desc.offset {
            check_param(gpu, layer, "offset", o, &[desc.dim])?;
        }
        let uniform = gpu.uniform(
            layer,
            &NormDims {
                rows,
                dim: n,
                center: (desc.kind == NormKind::Layer) as u32,
                has_gain: desc.gain.is_some() as u32,
                has_offset: desc.offset.is_some() as u32,
                eps: desc.eps,
                pad0: 0,
                pad1: 0,
            },
        );
        let mean = gpu.storage("norm mean", desc.rows as u64 * 4);
        let rstd = gpu.storage("norm rstd", desc.rows as u64 * 4);
        // Bound in place of an absent gain or offset; the kernels never touch it.
        let unused = gpu.storage("norm unused", 16);
        let unused_view = View::new(&unused, 4);
        let gain = desc.gain.unwrap_or(Param {
            value: unused_view,
            grad: unused_view,
        });
        let offset = desc.offset.unwrap_or(Param {
            value: unused_view,
            grad: unused_view,
        });
        let mut views = vec![
            read(1, "x", desc.x),
            read(2, "gain", gain.value),
            read(3, "offset", offset.value),
            write(4, "y", desc.y),
            write(5, "mean", View::new(&mean, desc.rows)),
            write(6, "rstd", View::new(&rstd, desc.rows)),
            read(7, "dy", desc.dy),
            write(9, "gain.grad", gain.grad),
            write(10, "offset.grad", offset.grad),
        ];
        if let Some(dx) = desc.dx {
            views.push(write(8, "dx", dx));
        }
        // Short rows: one invocation per row; long rows: one workgroup per row.
        let (forward_entry, input_entry, by_row) = if desc.dim <= SHORT_ROWS {
            (
                "norm_forward_rows",
                "norm_backward_input_rows",
                (groups_for_64(desc.rows), 1),
            )
        } else {
            ("norm_forward", "norm_backward_input", (groups_for_rows(desc.rows), 1))
        };
        let forward = vec![layer_dispatch(
            gpu,
            layer,
            "norm",
            forward_entry,
            &uniform,
            &views,
            by_row,
        )?];
        let mut backward = Vec::new();
        if desc.dx.is_some() {
            backward.push(layer_dispatch(
                gpu,
                layer,
                "norm",
                input_entry,
                &uniform,
                &views,
                by_row,
            )?);
        }
        if desc.gain.is_some() || desc.offset.is_some() {
            let by_col = (groups_for(desc.dim), 1);
            backward.push(layer_dispatch(
                gpu,
                layer,
                "norm",
                "norm_backward_params",
                &uniform,
                &views,
                by_col,
            )?);
        }
        Ok(Norm {
            forward,
            backward,
            _scratch: [mean, rstd, unused],
        })
    }

    /// Records y = x̂ g + o (and the per-row statistics the backward pass uses).
    pub fn record_forward(&self, rec: &mut dyn Recorder) {
        record_all(&self.forward, rec);
    }

    /// Records dx (if given), dgain and doffset (if present), all overwritten.
    /// Needs this step's forward pass recorded before it.
    pub fn record_backward(&self, rec: &mut dyn Recorder) {
        record_all(&self.backward, rec);
    }
}
