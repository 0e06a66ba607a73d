//! Layers with hand-written WGSL forward and backward kernels, in the spirit of
//! llm.c: each layer has an f64 twin in [`reference`](mod@reference), and the tests check one
//! against the other.
//!
//! A layer is built once from a descriptor naming its shapes and the buffers it
//! reads and writes ([`View`]s of activation buffers, [`Param`]s of the arena);
//! its pipelines and bind groups are made then. Afterwards it only records:
//! [`record_forward`](Linear::record_forward) and
//! [`record_backward`](Linear::record_backward) add dispatches to a compute pass,
//! so a whole training step can be one pass with no host readback.
//!
//! Conventions shared by every layer:
//! - tensors are row-major f32 (ids and targets u32); shapes are in each descriptor;
//! - every gradient a layer writes is **overwritten**, never accumulated, so
//!   nothing needs zeroing between steps, and every sum runs in a fixed order:
//!   the same inputs give bit-identical outputs on the same adapter;
//! - within one dispatch a buffer may not be both read and written (wgpu tracks
//!   usage per buffer), so e.g. `x` and `y` must be different buffers; the
//!   arena's `params` and `grads` are different buffers, so parameters and their
//!   gradients are fine. Constructors check this and name the views.

pub mod activation;
pub mod attention;
pub mod embedding;
pub mod linear;
pub mod loss;
pub mod norm;
pub mod reference;
pub mod residual;

pub use activation::{Activation, ActivationDesc, ActivationKind};
pub use attention::{Attention, AttentionDesc};
pub use embedding::{Embedding, EmbeddingDesc};
pub use linear::{Linear, LinearDesc};
pub use loss::{CrossEntropy, CrossEntropyDesc, LossStats};
pub use norm::{Norm, NormDesc, NormKind};
pub use residual::Add;

use crate::arena::Arena;
use crate::error::{Error, Result};
use crate::gpu::buffers::range;
use crate::gpu::{Dispatch, Gpu, Recorder};

/// `len` 4-byte elements (f32, or u32 for ids and targets) of `buffer` from
/// element `offset`: a tensor a layer reads or writes.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// The buffer (usage STORAGE).
    pub buffer: &'a wgpu::Buffer,
    /// First element (its byte offset must meet the device's storage offset alignment, 256 at most).
    pub offset: usize,
    /// Number of elements.
    pub len: usize,
}

impl<'a> View<'a> {
    /// The first `len` elements of `buffer`.
    pub fn new(buffer: &'a wgpu::Buffer, len: usize) -> Self {
        View { buffer, offset: 0, len }
    }

    /// `len` elements of `buffer` from element `offset`.
    pub fn at(buffer: &'a wgpu::Buffer, offset: usize, len: usize) -> Self {
        View { buffer, offset, len }
    }

    fn binding(&self) -> wgpu::BindingResource<'a> {
        range(self.buffer, self.offset as u64 * 4, self.len as u64 * 4)
    }
}

/// A trainable tensor: its values and its gradient (same length).
#[derive(Debug, Clone, Copy)]
pub struct Param<'a> {
    /// The values (usually in `arena.params`).
    pub value: View<'a>,
    /// The gradient the backward pass overwrites (usually in `arena.grads`).
    pub grad: View<'a>,
}

impl<'a> Param<'a> {
    /// Tensor `name` of `arena`: its slot in `arena.params` and in `arena.grads`.
    pub fn from_arena(arena: &'a Arena, name: &str) -> Result<Param<'a>> {
        let slot = arena.layout.slot(name)?;
        Ok(Param {
            value: View::at(&arena.params, slot.offset, slot.len),
            grad: View::at(&arena.grads, slot.offset, slot.len),
        })
    }
}

/// Most workgroups a dispatch may have in one dimension, portably.
const MAX_GROUPS: usize = 65535;

/// Workgroups for a strided loop over `n` items, 256 per workgroup.
fn groups_for(n: usize) -> u32 {
    n.div_ceil(256).clamp(1, MAX_GROUPS) as u32
}

/// Workgroups for a strided loop over `n` rows, one row per workgroup.
fn groups_for_rows(n: usize) -> u32 {
    n.clamp(1, MAX_GROUPS) as u32
}

/// Workgroups for a strided loop over `n` items (rows, blocks), one per
/// invocation, 64 per workgroup: the kernels without barriers use workgroups of 64.
fn groups_for_64(n: usize) -> u32 {
    n.div_ceil(64).clamp(1, MAX_GROUPS) as u32
}

/// A positive dimension `layer.field` (kernel indices are u32).
fn dim(layer: &str, field: &str, value: usize) -> Result<u32> {
    if value == 0 {
        return Err(Error::invalid(format!("{layer}.{field}"), "must be positive"));
    }
    u32::try_from(value).map_err(|_| Error::invalid(format!("{layer}.{field}"), format!("{value} is too large")))
}

/// Checks that `view` (`layer.name`) holds a tensor of `shape`, and that it can
/// be bound: in bounds, aligned, under the binding size limit.
fn check_view(gpu: &Gpu, layer: &str, name: &str, view: &View, shape: &[usize]) -> Result<()> {
    let field = format!("{layer}.{name}");
    let need = shape.iter().try_fold(1usize, |a, &b| a.checked_mul(b));
    let need = need
        .filter(|&n| n <= u32::MAX as usize)
        .ok_or_else(|| Error::invalid(&field, format!("shape {shape:?} has too many elements")))?;
    if view.len != need {
        return Err(Error::invalid(
            &field,
            format!("has {} elements, but shape {shape:?} needs {need}", view.len),
        ));
    }
    if !view.buffer.usage().contains(wgpu::BufferUsages::STORAGE) {
        return Err(Error::invalid(&field, "its buffer lacks the STORAGE usage"));
    }
    let (start, bytes) = (view.offset as u64 * 4, view.len as u64 * 4);
    if start + bytes > view.buffer.size() {
        return Err(Error::invalid(
            &field,
            format!(
                "elements {}..{} lie outside its buffer of {} bytes",
                view.offset,
                view.offset + view.len,
                view.buffer.size()
            ),
        ));
    }
    let align = gpu.limits.min_storage_buffer_offset_alignment as u64;
    if !start.is_multiple_of(align) {
        return Err(Error::invalid(
            &field,
            format!("byte offset {start} is not a multiple of the device's storage offset alignment {align}"),
        ));
    }
    if bytes > gpu.limits.max_storage_buffer_binding_size {
        return Err(Error::invalid(
            &field,
            format!(
                "{bytes} bytes exceed the device's max_storage_buffer_binding_size {}",
                gpu.limits.max_storage_buffer_binding_size
            ),
        ));
    }
    Ok(())
}

/// Checks a parameter: its value and gradient both hold `shape`.
fn check_param(gpu: &Gpu, layer: &str, name: &str, param: &Param, shape: &[usize]) -> Result<()> {
    check_view(gpu, layer, name, &param.value, shape)?;
    check_view(gpu, layer, &format!("{name}.grad"), &param.grad, shape)
}

/// How a dispatch uses a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

/// One view bound at `binding`, named for error messages.
struct Bound<'a> {
    binding: u32,
    name: &'static str,
    view: View<'a>,
    access: Access,
}

fn read<'a>(binding: u32, name: &'static str, view: View<'a>) -> Bound<'a> {
    Bound {
        binding,
        name,
        view,
        access: Access::Read,
    }
}

fn write<'a>(binding: u32, name: &'static str, view: View<'a>) -> Bound<'a> {
    Bound {
        binding,
        name,
        view,
        access: Access::Write,
    }
}

/// A dispatch of entry `entry` of kernel file `file` with `uniform` at binding 0
/// and those of `views` it uses, over a 2-D grid; refuses a buffer both read and
/// written by it, naming both views.
#[allow(clippy::too_many_arguments)]
fn layer_dispatch(
    gpu: &Gpu,
    layer: &str,
    file: &'static str,
    entry: &'static str,
    uniform: &wgpu::Buffer,
    views: &[Bound],
    groups: (u32, u32),
) -> Result<Dispatch> {
    let used = gpu.kernel_bindings(file, entry)?;
    let views: Vec<&Bound> = views.iter().filter(|b| used.contains(&b.binding)).collect();
    for w in views.iter().filter(|b| b.access == Access::Write) {
        if let Some(r) = views
            .iter()
            .find(|r| r.access == Access::Read && r.view.buffer == w.view.buffer)
        {
            return Err(Error::invalid(
                format!("{layer}.{}", w.name),
                format!(
                    "shares a buffer with {layer}.{}, which the same kernel reads: use another buffer",
                    r.name
                ),
            ));
        }
    }
    let mut resources = vec![(0, uniform.as_entire_binding())];
    resources.extend(views.iter().map(|b| (b.binding, b.view.binding())));
    gpu.dispatch(file, entry, &resources, [groups.0, groups.1, 1])
}

/// Records `dispatches` in order.
fn record_all(dispatches: &[Dispatch], rec: &mut dyn Recorder) {
    for d in dispatches {
        rec.dispatch(d);
    }
}
