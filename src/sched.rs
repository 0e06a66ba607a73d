//! Records a whole training step (forward, loss, backward, optimizer, NaP) into
//! one command encoder, and brings metrics back asynchronously: a step never
//! waits for the host.

#[cfg(not(target_arch = "wasm32"))]
use std::collections::VecDeque;
#[cfg(not(target_arch = "wasm32"))]
use std::sync::{Arc, Mutex};

#[cfg(not(target_arch = "wasm32"))]
use crate::error::Error;
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

#[cfg(not(target_arch = "wasm32"))]
type MapResult = Arc<Mutex<Option<std::result::Result<(), wgpu::BufferAsyncError>>>>;

#[cfg(not(target_arch = "wasm32"))]
struct Pending {
    tag: u64,
    buffer: wgpu::Buffer,
    bytes: u64,
    mapped: Option<MapResult>,
}

/// Small device-to-host copies that complete in the background: record a copy
/// into a step's encoder, call [`AsyncReadback::submitted`] after the submit,
/// and collect finished copies with [`AsyncReadback::poll`] while training goes on.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Default)]
pub struct AsyncReadback {
    pending: VecDeque<Pending>,
}

#[cfg(not(target_arch = "wasm32"))]
impl AsyncReadback {
    /// Records a copy of `bytes` bytes of `src` (from byte 0), tagged `tag` (e.g. the step).
    pub fn record(&mut self, gpu: &Gpu, enc: &mut wgpu::CommandEncoder, src: &wgpu::Buffer, bytes: u64, tag: u64) {
        let size = bytes.next_multiple_of(4);
        let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("metrics readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        enc.copy_buffer_to_buffer(src, 0, &buffer, 0, size);
        self.pending.push_back(Pending {
            tag,
            buffer,
            bytes,
            mapped: None,
        });
    }

    /// Starts mapping every copy recorded since the last call (after their submission).
    pub fn submitted(&mut self) {
        for p in self.pending.iter_mut().filter(|p| p.mapped.is_none()) {
            let slot: MapResult = Arc::default();
            let done = slot.clone();
            p.buffer.map_async(wgpu::MapMode::Read, .., move |r| {
                *done.lock().expect("readback lock") = Some(r);
            });
            p.mapped = Some(slot);
        }
    }

    /// The copies that have finished, in the order they were recorded (does not wait).
    pub fn poll(&mut self, gpu: &Gpu) -> Result<Vec<(u64, Vec<u8>)>> {
        let _ = gpu.device.poll(wgpu::PollType::Poll);
        self.take_ready()
    }

    /// Waits for every pending copy and returns them all.
    pub fn finish(&mut self, gpu: &Gpu) -> Result<Vec<(u64, Vec<u8>)>> {
        self.submitted();
        gpu.wait()?;
        let out = self.take_ready()?;
        if !self.pending.is_empty() {
            return Err(Error::Gpu("a metrics readback did not complete".into()));
        }
        Ok(out)
    }

    fn take_ready(&mut self) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut out = Vec::new();
        while let Some(front) = self.pending.front() {
            let state = front
                .mapped
                .as_ref()
                .and_then(|m| m.lock().expect("readback lock").clone());
            match state {
                None => break,
                Some(Err(e)) => return Err(Error::Gpu(format!("metrics readback failed: {e}"))),
                Some(Ok(())) => {
                    let p = self.pending.pop_front().expect("front exists");
                    let view = p
                        .buffer
                        .get_mapped_range(..)
                        .map_err(|e| Error::Gpu(format!("metrics readback mapping: {e}")))?;
                    let mut bytes = view.to_vec();
                    drop(view);
                    bytes.truncate(p.bytes as usize);
                    out.push((p.tag, bytes));
                }
            }
        }
        Ok(out)
    }
}
