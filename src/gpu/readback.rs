//! The one way data comes back to the host: copies recorded into a mappable
//! staging buffer, then mapped.
//!
//! - [`Gpu::read_async`] / [`Gpu::read`]: one range of one buffer, now.
//! - [`PackedReadback`]: several ranges of several buffers copied into one
//!   staging buffer in the caller's encoder, read back in one transfer; each
//!   [`Part`] remembers where its bytes landed.
//! - [`AsyncReadback`] (native): small copies that complete in the background
//!   while training goes on (metrics).

#[cfg(not(target_arch = "wasm32"))]
use std::collections::VecDeque;
#[cfg(not(target_arch = "wasm32"))]
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::gpu::Gpu;

impl Gpu {
    /// A buffer of at least `bytes` bytes that copies can land in and the host can map.
    fn staging(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Copies `bytes` bytes of `buffer` from `offset` to the host. Natively this
    /// waits for the device; in the browser the future resolves when the GPU is done.
    pub async fn read_bytes_async(&self, buffer: &wgpu::Buffer, offset: u64, bytes: u64) -> Result<Vec<u8>> {
        let mut packed = PackedReadback::default();
        let part = packed.add(buffer, offset, bytes);
        let pending = self.submit(|enc| packed.record(self, enc));
        Ok(pending.read(self).await?.bytes(part).to_vec())
    }

    /// Reads `count` values of type `T` from `buffer` starting at element `first`.
    pub async fn read_async<T: bytemuck::Pod>(
        &self,
        buffer: &wgpu::Buffer,
        first: usize,
        count: usize,
    ) -> Result<Vec<T>> {
        let size = std::mem::size_of::<T>() as u64;
        let bytes = self
            .read_bytes_async(buffer, first as u64 * size, count as u64 * size)
            .await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// [`Gpu::read_async`], waiting for the device (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read<T: bytemuck::Pod>(&self, buffer: &wgpu::Buffer, first: usize, count: usize) -> Result<Vec<T>> {
        pollster::block_on(self.read_async(buffer, first, count))
    }
}

/// Where one range of a [`PackedReadback`] lies in the packed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    offset: usize,
    bytes: usize,
}

/// Ranges of buffers to bring back together: add them, record the copies into
/// an encoder, submit, then [`PendingRead::read`].
#[derive(Debug, Default)]
pub struct PackedReadback {
    copies: Vec<(wgpu::Buffer, u64, Part)>,
    total: u64,
}

impl PackedReadback {
    /// Adds `bytes` bytes of `src` from byte `offset` (both multiples of 4);
    /// the returned part finds them in the result.
    pub fn add(&mut self, src: &wgpu::Buffer, offset: u64, bytes: u64) -> Part {
        let part = Part {
            offset: self.total as usize,
            bytes: bytes as usize,
        };
        self.copies.push((src.clone(), offset, part));
        self.total += bytes.next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
        part
    }

    /// Adds `count` values of type `T` of `src` from element `first`.
    pub fn add_values<T: bytemuck::Pod>(&mut self, src: &wgpu::Buffer, first: usize, count: usize) -> Part {
        let size = std::mem::size_of::<T>() as u64;
        self.add(src, first as u64 * size, count as u64 * size)
    }

    /// Records every copy into `enc`; submit it before reading.
    pub fn record(self, gpu: &Gpu, enc: &mut wgpu::CommandEncoder) -> PendingRead {
        let staging = gpu.staging("packed readback", self.total);
        for (src, offset, part) in &self.copies {
            let size = (part.bytes as u64).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
            enc.copy_buffer_to_buffer(src, *offset, &staging, part.offset as u64, size);
        }
        PendingRead { staging }
    }
}

/// Copies recorded and (once its encoder is submitted) on their way to the host.
#[derive(Debug)]
pub struct PendingRead {
    staging: wgpu::Buffer,
}

impl PendingRead {
    /// Maps the staging buffer once the device is done with it. Natively this
    /// waits; in the browser the future resolves when the GPU is done.
    pub async fn read(self, gpu: &Gpu) -> Result<Packed> {
        let (tx, rx) = futures::channel::oneshot::channel();
        self.staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        gpu.wait()?;
        rx.await
            .map_err(|_| Error::Gpu("readback callback never ran".into()))?
            .map_err(|e| Error::Gpu(format!("readback failed: {e}")))?;
        let view = self
            .staging
            .get_mapped_range(..)
            .map_err(|e| Error::Gpu(format!("readback mapping: {e}")))?;
        let bytes = view.to_vec();
        drop(view);
        self.staging.unmap();
        Ok(Packed { bytes })
    }
}

/// The bytes of a [`PackedReadback`], found by [`Part`].
#[derive(Debug, Clone)]
pub struct Packed {
    bytes: Vec<u8>,
}

impl Packed {
    /// The bytes of `part`.
    pub fn bytes(&self, part: Part) -> &[u8] {
        &self.bytes[part.offset..part.offset + part.bytes]
    }

    /// The bytes of `part` as values of type `T`.
    pub fn values<T: bytemuck::Pod>(&self, part: Part) -> Vec<T> {
        bytemuck::pod_collect_to_vec(self.bytes(part))
    }
}

#[cfg(not(target_arch = "wasm32"))]
type MapResult = Arc<Mutex<Option<std::result::Result<(), wgpu::BufferAsyncError>>>>;

#[cfg(not(target_arch = "wasm32"))]
struct Pending<T> {
    tag: T,
    buffer: wgpu::Buffer,
    bytes: u64,
    mapped: Option<MapResult>,
}

/// Small device-to-host copies that complete in the background: record a copy
/// into a step's encoder, call [`AsyncReadback::submitted`] after the submit,
/// and collect finished copies with [`AsyncReadback::poll`] while training goes on.
/// Each copy carries a tag of type `T` (e.g. the step, or what was copied and when).
#[cfg(not(target_arch = "wasm32"))]
pub struct AsyncReadback<T = u64> {
    pending: VecDeque<Pending<T>>,
}

#[cfg(not(target_arch = "wasm32"))]
impl<T> Default for AsyncReadback<T> {
    fn default() -> Self {
        AsyncReadback {
            pending: VecDeque::new(),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl<T> AsyncReadback<T> {
    /// Records a copy of `bytes` bytes of `src` (from byte 0), tagged `tag`.
    pub fn record(&mut self, gpu: &Gpu, enc: &mut wgpu::CommandEncoder, src: &wgpu::Buffer, bytes: u64, tag: T) {
        let buffer = gpu.staging("metrics readback", bytes);
        enc.copy_buffer_to_buffer(src, 0, &buffer, 0, buffer.size());
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
    pub fn poll(&mut self, gpu: &Gpu) -> Result<Vec<(T, Vec<u8>)>> {
        let _ = gpu.device.poll(wgpu::PollType::Poll);
        self.take_ready()
    }

    /// Waits for every pending copy and returns them all.
    pub fn finish(&mut self, gpu: &Gpu) -> Result<Vec<(T, Vec<u8>)>> {
        self.submitted();
        gpu.wait()?;
        let out = self.take_ready()?;
        if !self.pending.is_empty() {
            return Err(Error::Gpu("a metrics readback did not complete".into()));
        }
        Ok(out)
    }

    fn take_ready(&mut self) -> Result<Vec<(T, Vec<u8>)>> {
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
