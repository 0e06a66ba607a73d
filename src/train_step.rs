//! Records a whole training step (forward, loss, backward, optimizer, NaP) into
//! one command encoder: a step never waits for the host (metrics come back
//! through [`crate::gpu::readback::AsyncReadback`]).

use crate::error::Result;
use crate::gpu::Gpu;
use crate::model::Graph;
use crate::optim::GpuOptimizer;

/// Records one training step of `graph` with `opt` into `enc`: the forward pass
/// and loss, a copy of the mean loss into the optimizer's loss buffer (sf_plus),
/// the backward pass, then the optimizer step (with NaP when configured). The
/// batch must already be written.
pub fn record_train_step(
    gpu: &Gpu,
    enc: &mut wgpu::CommandEncoder,
    graph: &dyn Graph,
    opt: &mut GpuOptimizer,
) -> Result<()> {
    {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("forward"),
            timestamp_writes: None,
        });
        graph.record_forward(&mut pass);
    }
    if let Some(dst) = opt.loss_buffer() {
        graph.loss().record_copy_mean(enc, dst, 0);
    }
    {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("backward"),
            timestamp_writes: None,
        });
        graph.record_backward(&mut pass);
    }
    opt.record_step(gpu, enc)
}
