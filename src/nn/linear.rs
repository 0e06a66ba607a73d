//! Linear layer `y = x W + b` with a tiled matrix product (`shaders/linear.wgsl`).

use super::{
    check_param, check_view, dim, groups_for, layer_dispatch, read, record_all, write, Bound, Dispatch, Param, View,
};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Recorder};

/// Shapes and buffers of a [`Linear`] layer.
pub struct LinearDesc<'a> {
    /// Rows M of x and y (e.g. batch × sequence).
    pub rows: usize,
    /// Input features K.
    pub inputs: usize,
    /// Output features N.
    pub outputs: usize,
    /// Input x `[rows, inputs]`.
    pub x: View<'a>,
    /// Output y `[rows, outputs]`.
    pub y: View<'a>,
    /// Gradient of the loss with respect to y, `[rows, outputs]`, read by the backward pass.
    pub dy: View<'a>,
    /// Gradient with respect to x `[rows, inputs]`, written by the backward pass;
    /// `None` when x needs none (the model's input).
    pub dx: Option<View<'a>>,
    /// Weight W `[inputs, outputs]` (y = x W) and its gradient.
    pub weight: Param<'a>,
    /// Bias b `[outputs]` and its gradient, if any.
    pub bias: Option<Param<'a>>,
}

/// Dimensions of one product C[m, n] = A[m, k] B[k, n] with A and B given by strides.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct MatmulDims {
    m: u32,
    n: u32,
    k: u32,
    pad0: u32,
    a_row: u32,
    a_col: u32,
    b_row: u32,
    b_col: u32,
}

/// Output tile edge of both matmul kernels.
const TILE: usize = 64;

/// On GPUs, products of at most this many multiply-adds (m·n·k) take the kernels
/// without workgroup memory or barriers (`matmul_subgroup*`, or `matmul_block*`:
/// 8 × 8 outputs per invocation), larger ones the tiled kernels (`matmul*`), which
/// reuse loads through workgroup memory. On CPU drivers every product takes the
/// barrier-free kernels: there a barrier switches between every invocation of the
/// workgroup, and the tiled kernel ran about 8 times slower at every size measured
/// (`sfnap bench --matmul`).
pub const SMALL_PRODUCT: usize = 1 << 24;

/// Rows of C per workgroup of the subgroup kernels (`SG_ROWS` in `shaders/linear_subgroup.wgsl`).
const SG_ROWS: usize = 16;

/// The kernel for a product of `m·n·k` multiply-adds on `gpu`: `(file, entry,
/// rows of C per workgroup)`. Small products (see [`SMALL_PRODUCT`]) take
/// `matmul_subgroup*` where [`Gpu::subgroup_matmul`] holds, `matmul_block*`
/// elsewhere (the same sums in the same order); large ones the tiled `matmul*`.
fn matmul_kernel(gpu: &Gpu, d: &MatmulDims, bias: bool) -> (&'static str, &'static str, usize) {
    let small = (d.m as usize).saturating_mul(d.n as usize).saturating_mul(d.k as usize) <= SMALL_PRODUCT
        || gpu.info.device_type == wgpu::DeviceType::Cpu;
    match (small, gpu.subgroup_matmul, bias) {
        (true, true, false) => ("linear_subgroup", "matmul_subgroup", SG_ROWS),
        (true, true, true) => ("linear_subgroup", "matmul_subgroup_bias", SG_ROWS),
        (true, false, false) => ("linear", "matmul_block", TILE),
        (true, false, true) => ("linear", "matmul_block_bias", TILE),
        (false, _, false) => ("linear", "matmul", TILE),
        (false, _, true) => ("linear", "matmul_bias", TILE),
    }
}

/// One product C = A B (+ bias) as a dispatch; `a`, `b`, `c` are A's, B's and
/// C's views (A and B as `d`'s strides read them). Labelled `[m x k] [k x n]`
/// for profiles.
fn product<'a>(
    gpu: &Gpu,
    d: MatmulDims,
    label: &str,
    a: Bound<'a>,
    b: Bound<'a>,
    c: Bound<'a>,
    bias: Option<Bound<'a>>,
) -> Result<Dispatch> {
    const L: &str = "linear";
    let (file, entry, rows) = matmul_kernel(gpu, &d, bias.is_some());
    let (gx, gy) = ((d.n as usize).div_ceil(TILE), (d.m as usize).div_ceil(rows));
    if gx > super::MAX_GROUPS || gy > super::MAX_GROUPS {
        return Err(Error::invalid(
            L,
            format!(
                "a [{}, {}] product needs more than 65535 tiles in one dimension",
                d.m, d.n
            ),
        ));
    }
    let uniform = gpu.uniform(label, &d);
    let mut views = vec![a, b, c];
    views.extend(bias);
    let dispatch = layer_dispatch(gpu, L, file, entry, &uniform, &views, (gx as u32, gy as u32))?;
    let shape = format!("{} [{}x{}] [{}x{}]", dispatch.label(), d.m, d.k, d.k, d.n);
    Ok(dispatch.labelled(shape))
}

/// A linear layer: y `[M, N]` = x `[M, K]` W `[K, N]` (+ b `[N]`).
///
/// Forward: one matmul. Backward overwrites dx = dy Wᵀ (if asked for),
/// dW = xᵀ dy and db = column sums of dy; each output is one invocation's sum
/// in increasing index order, so gradients are deterministic. Each product takes
/// a barrier-free kernel when it is small (see [`SMALL_PRODUCT`]), the tiled
/// one otherwise.
pub struct Linear {
    forward: Vec<Dispatch>,
    backward: Vec<Dispatch>,
}

impl Linear {
    /// Builds the pipelines and bind groups; checks every view against the shapes.
    pub fn new(gpu: &Gpu, desc: &LinearDesc<'_>) -> Result<Linear> {
        const L: &str = "linear";
        let (m, k, n) = (
            dim(L, "rows", desc.rows)?,
            dim(L, "inputs", desc.inputs)?,
            dim(L, "outputs", desc.outputs)?,
        );
        let (rows, inputs, outputs) = (desc.rows, desc.inputs, desc.outputs);
        check_view(gpu, L, "x", &desc.x, &[rows, inputs])?;
        check_view(gpu, L, "y", &desc.y, &[rows, outputs])?;
        check_view(gpu, L, "dy", &desc.dy, &[rows, outputs])?;
        if let Some(dx) = &desc.dx {
            check_view(gpu, L, "dx", dx, &[rows, inputs])?;
        }
        check_param(gpu, L, "weight", &desc.weight, &[inputs, outputs])?;
        if let Some(b) = &desc.bias {
            check_param(gpu, L, "bias", b, &[outputs])?;
        }
        let dims = |m: u32, n: u32, k: u32, a: (u32, u32), b: (u32, u32)| MatmulDims {
            m,
            n,
            k,
            pad0: 0,
            a_row: a.0,
            a_col: a.1,
            b_row: b.0,
            b_col: b.1,
        };
        // y = x W (+ b): A = x (row stride K), B = W (row stride N).
        let forward = vec![product(
            gpu,
            dims(m, n, k, (k, 1), (n, 1)),
            "linear y = x W",
            read(1, "x", desc.x),
            read(2, "weight", desc.weight.value),
            write(4, "y", desc.y),
            desc.bias.as_ref().map(|b| read(3, "bias", b.value)),
        )?];
        let mut backward = Vec::new();
        if let Some(dx) = desc.dx {
            // dx = dy W^T: A = dy [M, N], B(j, i) = W[i, j] (stride 1 down, N across).
            backward.push(product(
                gpu,
                dims(m, k, n, (n, 1), (1, n)),
                "linear dx = dy W^T",
                read(1, "dy", desc.dy),
                read(2, "weight", desc.weight.value),
                write(4, "dx", dx),
                None,
            )?);
        }
        // dW = x^T dy: A(i, r) = x[r, i] (stride 1 down, K across), B = dy.
        backward.push(product(
            gpu,
            dims(k, n, m, (1, k), (n, 1)),
            "linear dW = x^T dy",
            read(1, "x", desc.x),
            read(2, "dy", desc.dy),
            write(4, "weight.grad", desc.weight.grad),
            None,
        )?);
        if let Some(b) = &desc.bias {
            let views = [read(5, "dy", desc.dy), write(6, "bias.grad", b.grad)];
            let g = (groups_for(outputs), 1);
            let sums = gpu.uniform("linear db", &dims(m, n, k, (k, 1), (n, 1)));
            backward.push(layer_dispatch(gpu, L, "linear", "column_sums", &sums, &views, g)?);
        }
        Ok(Linear { forward, backward })
    }

    /// Records y = x W (+ b).
    pub fn record_forward(&self, rec: &mut dyn Recorder) {
        record_all(&self.forward, rec);
    }

    /// Records dx = dy Wᵀ (if dx was given), dW = xᵀ dy and db = Σ_rows dy, all overwritten.
    pub fn record_backward(&self, rec: &mut dyn Recorder) {
        record_all(&self.backward, rec);
    }
}
