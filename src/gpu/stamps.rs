//! GPU timestamp queries: a query set, and the passes that write it.

use crate::error::Result;
use crate::gpu::Gpu;

/// A set of `count` timestamps, written by compute passes and read back in
/// nanoseconds. Needs [`Gpu::timestamps`].
pub(crate) struct Stamps {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    count: u32,
}

impl Stamps {
    /// Room for `count` timestamps.
    pub fn new(gpu: &Gpu, count: u32) -> Stamps {
        let set = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count,
        });
        let resolve = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamps"),
            size: 8 * count as u64,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        Stamps { set, resolve, count }
    }

    /// An empty compute pass that writes timestamp `index` (at its start).
    pub fn write(&self, enc: &mut wgpu::CommandEncoder, index: u32) {
        enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("timestamp"),
            timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                query_set: &self.set,
                beginning_of_pass_write_index: Some(index),
                end_of_pass_write_index: None,
            }),
        });
    }

    /// A compute pass that writes timestamp `index` at its start and `index + 1` at its end.
    pub fn pass<'e>(&self, enc: &'e mut wgpu::CommandEncoder, index: u32) -> wgpu::ComputePass<'e> {
        enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("timed"),
            timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                query_set: &self.set,
                beginning_of_pass_write_index: Some(index),
                end_of_pass_write_index: Some(index + 1),
            }),
        })
    }

    /// Every timestamp, in nanoseconds (from an arbitrary origin).
    pub fn read_ns(&self, gpu: &Gpu) -> Result<Vec<f64>> {
        gpu.submit(|enc| enc.resolve_query_set(&self.set, 0..self.count, &self.resolve, 0));
        let ticks: Vec<u64> = gpu.read(&self.resolve, 0, self.count as usize)?;
        let period = gpu.queue.get_timestamp_period() as f64;
        Ok(ticks.iter().map(|&t| t as f64 * period).collect())
    }
}
