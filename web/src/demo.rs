//! What the demos share: the [`Demo`] interface the bindings and the tests drive,
//! and snapshot [`Request`]s, read back in one transfer.
//!
//! A demo steps without reading anything back. A snapshot records its evaluation
//! and copies into one encoder and submits it ([`Demo::request_snapshot`]); the
//! [`Request`] keeps the [`Part`](sfnap::gpu::Part)s of the packed readback and is
//! read later ([`Request::read`]), so stepping may go on meanwhile.

use std::ops::Range;

use serde::Serialize;
use sfnap::gpu::{Gpu, Packed, PackedReadback, PendingRead};
use sfnap::Result;

/// A demo trained or raced step by step on the device.
pub trait Demo: Sized {
    /// What it runs (JSON in and out of the page).
    type Config: Serialize;
    /// Where each piece of a snapshot lies in the packed readback.
    type Parts: Unpack;

    /// Parses a config JSON (missing fields take their defaults) and checks it.
    fn parse_config(json: &str) -> Result<Self::Config>;
    /// Builds the demo on `gpu`.
    fn new(gpu: &Gpu, config: &Self::Config) -> Result<Self>;
    /// The config.
    fn config(&self) -> &Self::Config;
    /// Steps taken.
    fn steps(&self) -> u64;
    /// Submits `n` steps (no readback).
    fn step(&mut self, gpu: &Gpu, n: u32) -> Result<()>;
    /// Records and submits what a snapshot needs; read it with [`Request::read`].
    fn request_snapshot(&mut self, gpu: &Gpu) -> Request<Self::Parts>;

    /// [`Demo::request_snapshot`], then [`Request::read`], waiting for the device (native only).
    #[cfg(not(target_arch = "wasm32"))]
    fn snapshot(&mut self, gpu: &Gpu) -> Result<Snapshot<Self>> {
        pollster::block_on(self.request_snapshot(gpu).read(gpu))
    }
}

/// The snapshot type of demo `D`.
pub type Snapshot<D> = <<D as Demo>::Parts as Unpack>::Snapshot;

/// The parts of a snapshot's readback and what turns them into the snapshot.
pub trait Unpack {
    /// The snapshot (serialized to JSON for the page).
    type Snapshot: Serialize;
    /// Builds the snapshot from the bytes read back.
    fn unpack(self, packed: &Packed) -> Self::Snapshot;
}

/// A snapshot submitted to the device, to be read back.
pub struct Request<P> {
    pending: PendingRead,
    parts: P,
}

impl<P: Unpack> Request<P> {
    /// Creates an encoder in which `record` records the snapshot's work and adds
    /// the ranges to read back (returning where they lie), records the copies
    /// after that work, and submits.
    pub fn submit(gpu: &Gpu, record: impl FnOnce(&mut wgpu::CommandEncoder, &mut PackedReadback) -> P) -> Self {
        gpu.submit(|enc| {
            let mut readback = PackedReadback::default();
            let parts = record(enc, &mut readback);
            Request {
                pending: readback.record(gpu, enc),
                parts,
            }
        })
    }

    /// Reads the snapshot back (one transfer). Natively this waits; in the
    /// browser the future resolves when the GPU is done.
    pub async fn read(self, gpu: &Gpu) -> Result<P::Snapshot> {
        let packed = self.pending.read(gpu).await?;
        Ok(self.parts.unpack(&packed))
    }
}

/// The steps a snapshot at step `now` reports from a ring of `len` per-step
/// entries: those since the previous snapshot (`*read_from`, which becomes `now`),
/// at most the `len` newest.
pub fn steps_since(read_from: &mut u64, now: u64, len: usize) -> Range<u64> {
    let from = (*read_from).max(now.saturating_sub(len as u64));
    *read_from = now;
    from..now
}

/// Entries `range` of a ring read back whole (entry `k` lies at `k % ring.len()`).
pub fn ring_entries<T: Copy>(ring: &[T], range: Range<u64>) -> impl Iterator<Item = T> + '_ {
    range.map(|k| ring[k as usize % ring.len()])
}
