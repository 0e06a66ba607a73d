//! Residual connection `y = a + b` (`shaders/residual.wgsl`): its forward pass,
//! and the sum of the two gradients where the residual stream branches.

use super::{check_view, dim, groups_for, layer_dispatch, read, record_all, write, Dispatch, View};
use crate::error::Result;
use crate::gpu::{Gpu, Recorder};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AddDims {
    len: u32,
    pad: [u32; 3],
}

/// `sum = a + b` over `len` elements; three different buffers.
pub struct Add {
    dispatch: Vec<Dispatch>,
}

impl Add {
    /// Builds the dispatch; checks the views.
    pub fn new(gpu: &Gpu, len: usize, a: View<'_>, b: View<'_>, sum: View<'_>) -> Result<Add> {
        const L: &str = "add";
        let n = dim(L, "len", len)?;
        for (name, v) in [("a", &a), ("b", &b), ("sum", &sum)] {
            check_view(gpu, L, name, v, &[len])?;
        }
        let uniform = gpu.uniform(L, &AddDims { len: n, pad: [0; 3] });
        let views = [read(1, "a", a), read(2, "b", b), write(3, "sum", sum)];
        let d = layer_dispatch(gpu, L, "residual", "add", &uniform, &views, (groups_for(len), 1))?;
        Ok(Add { dispatch: vec![d] })
    }

    /// Records the sum.
    pub fn record(&self, rec: &mut dyn Recorder) {
        record_all(&self.dispatch, rec);
    }
}
