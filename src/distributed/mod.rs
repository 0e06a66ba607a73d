//! Data-parallel training: several processes ("ranks"), one adapter each, train
//! one model on one global batch.
//!
//! Every rank draws the same global batch (same seed, same sampler) and trains
//! on its own slice of rows; after the backward pass the gradients are summed
//! over the ranks and divided by the number of slices, so every rank holds the
//! mean gradient of the global batch and takes the same optimizer step: the
//! weights stay identical without ever being sent. sf_plus's loss is averaged
//! the same way, so its L1 norm and inner product (computed on each device from
//! identical gradients and state) come out identical too.
//!
//! The transport is a [`Collective`]: with the cargo feature `mpi`,
//! `mpi::MpiWorld` (OpenMPI, MPICH, whatever `mpirun` or Slurm's `srun`
//! launched); the training loop ([`crate::train::train_parallel`]) knows nothing
//! of MPI, so the library stays embeddable without it. Gradients travel through
//! the host in buckets of at most [`BUCKET_BYTES`] bytes, staged in one reused
//! buffer ([`crate::train`]'s gradient exchange).

#[cfg(feature = "mpi")]
pub mod mpi;

use std::ops::Range;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// Bytes of gradient moved per all-reduce at most: the host holds two buffers
/// of this size (send and receive) and the device one staging buffer, whatever
/// the model's size.
pub const BUCKET_BYTES: usize = 16 << 20;

/// What data-parallel training needs from a transport: every call is collective
/// (every rank makes it, in the same order).
pub trait Collective {
    /// This process's rank, `0..size()`.
    fn rank(&self) -> usize;
    /// Ranks in all.
    fn size(&self) -> usize;
    /// Sums `send` element-wise over the ranks into `recv` (same length) on every rank.
    fn all_reduce_sum(&self, send: &[f32], recv: &mut [f32]) -> Result<()>;
    /// Every rank's `value`, in rank order.
    fn all_gather(&self, value: u64) -> Result<Vec<u64>>;
}

/// Rows `[r·B/N, (r+1)·B/N)` of a global batch of `batch` rows that slice `r`
/// of `slices` trains on; a batch that does not split evenly is refused (the
/// mean of unequal slices' means would not be the batch's mean).
pub fn shard(batch: usize, slices: usize, r: usize) -> Result<Range<usize>> {
    if slices == 0 || r >= slices {
        return Err(Error::invalid("ranks", format!("slice {r} of {slices}")));
    }
    if !batch.is_multiple_of(slices) {
        return Err(Error::invalid(
            "batch",
            format!(
                "--batch is the global batch and must split evenly over the {slices} slices of each step \
                 (ranks × accumulation); {batch} does not: use a multiple of {slices}"
            ),
        ));
    }
    let per = batch / slices;
    Ok(r * per..(r + 1) * per)
}

/// A cheap checksum of `bytes` (64-bit, FNV-1a over little-endian words):
/// equal bytes give equal sums; ranks compare the sums of their weights.
pub fn checksum(bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        h = (h ^ u64::from_le_bytes(w.try_into().expect("8 bytes"))).wrapping_mul(PRIME);
    }
    for &b in words.remainder() {
        h = (h ^ b as u64).wrapping_mul(PRIME);
    }
    (h ^ bytes.len() as u64).wrapping_mul(PRIME)
}

/// `None` when every rank reported the same value; else a sentence naming
/// which ranks hold which value (`what` names the compared quantity).
pub fn disagreement(what: &str, values: &[u64]) -> Option<String> {
    let mut groups: Vec<(u64, Vec<usize>)> = Vec::new();
    for (rank, &v) in values.iter().enumerate() {
        match groups.iter_mut().find(|(g, _)| *g == v) {
            Some((_, ranks)) => ranks.push(rank),
            None => groups.push((v, vec![rank])),
        }
    }
    if groups.len() <= 1 {
        return None;
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(v, ranks)| {
            let list: Vec<String> = ranks.iter().map(|r| r.to_string()).collect();
            let (noun, verb) = if ranks.len() == 1 {
                ("rank", "holds")
            } else {
                ("ranks", "hold")
            };
            format!("{noun} {} {verb} {v:016x}", list.join(", "))
        })
        .collect();
    Some(format!("{what} differ across ranks: {}", parts.join("; ")))
}

/// Compares `value` across the ranks of `comm`: Ok when all agree, else the
/// error `wrong` builds from the sentence naming the ranks.
pub fn agree(comm: &dyn Collective, what: &str, value: u64, wrong: impl FnOnce(String) -> Error) -> Result<()> {
    let values = comm.all_gather(value)?;
    match disagreement(what, &values) {
        None => Ok(()),
        Some(msg) => Err(wrong(msg)),
    }
}

/// Seconds spent moving gradients, summed over calls (see [`GradientBuckets::timing`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ExchangeTiming {
    /// Device to host: copies into the staging buffer, the wait, the mapping.
    pub download_s: f64,
    /// The all-reduce calls (including waiting for the slowest rank).
    pub reduce_s: f64,
    /// Dividing and writing the results back to the device (queued).
    pub upload_s: f64,
}

/// Byte offset of the gradient bucket in the staging buffer (the first 256
/// bytes hold a small extra copy, e.g. the loss statistics).
const BUCKET_AT: u64 = 256;

/// Moves a gradient buffer through the host in buckets of at most
/// [`BUCKET_BYTES`]: one device staging buffer and two host buffers, all
/// reused, whatever the gradient's size.
pub struct GradientBuckets {
    staging: wgpu::Buffer,
    bucket: usize,
    send: Vec<f32>,
    recv: Vec<f32>,
    timing: ExchangeTiming,
}

impl GradientBuckets {
    /// Buckets for a gradient of `elements` f32 values (a multiple of 64).
    pub fn new(gpu: &Gpu, elements: usize) -> GradientBuckets {
        GradientBuckets::with_bucket_bytes(gpu, elements, BUCKET_BYTES)
    }

    /// Buckets of at most `bucket_bytes` bytes (rounded down to 256; at least 256).
    pub fn with_bucket_bytes(gpu: &Gpu, elements: usize, bucket_bytes: usize) -> GradientBuckets {
        let bucket = (bucket_bytes / 256 * 64).max(64).min(elements.next_multiple_of(64));
        let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("gradient exchange staging"),
            size: BUCKET_AT + bucket as u64 * 4,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        GradientBuckets {
            staging,
            bucket,
            send: vec![0.0; bucket],
            recv: vec![0.0; bucket],
            timing: ExchangeTiming::default(),
        }
    }

    /// Elements per bucket.
    pub fn bucket_elements(&self) -> usize {
        self.bucket
    }

    /// Time spent so far.
    pub fn timing(&self) -> ExchangeTiming {
        self.timing
    }

    /// Reads `n` f32 values of `buffer` from element `first` (n ≤ one bucket)
    /// into the send buffer, with `extra` (≤ 256 bytes of another buffer, from
    /// byte 0) copied in the same transfer and returned.
    fn download(
        &mut self,
        gpu: &Gpu,
        buffer: &wgpu::Buffer,
        first: usize,
        n: usize,
        extra: Option<(&wgpu::Buffer, u64)>,
    ) -> Result<Vec<u8>> {
        let started = Instant::now();
        let bytes = n as u64 * 4;
        gpu.submit(|enc| {
            if let Some((src, len)) = extra {
                enc.copy_buffer_to_buffer(src, 0, &self.staging, 0, len);
            }
            enc.copy_buffer_to_buffer(buffer, first as u64 * 4, &self.staging, BUCKET_AT, bytes);
        });
        let (tx, rx) = std::sync::mpsc::channel();
        self.staging
            .map_async(wgpu::MapMode::Read, 0..BUCKET_AT + bytes, move |r| {
                let _ = tx.send(r);
            });
        gpu.wait()?;
        rx.recv()
            .map_err(|_| Error::Gpu("gradient readback callback never ran".into()))?
            .map_err(|e| Error::Gpu(format!("gradient readback failed: {e}")))?;
        let view = self
            .staging
            .get_mapped_range(0..BUCKET_AT + bytes)
            .map_err(|e| Error::Gpu(format!("gradient readback mapping: {e}")))?;
        let extra_bytes = extra.map_or(Vec::new(), |(_, len)| view[..len as usize].to_vec());
        self.send[..n].copy_from_slice(bytemuck::cast_slice(&view[BUCKET_AT as usize..]));
        drop(view);
        self.staging.unmap();
        self.timing.download_s += started.elapsed().as_secs_f64();
        Ok(extra_bytes)
    }

    /// Sums the send buffer's first `n` values over the ranks (a copy without
    /// `comm`), divides by `divisor` and queues them into `buffer` at element `first`.
    fn reduce_upload(
        &mut self,
        gpu: &Gpu,
        comm: Option<&dyn Collective>,
        buffer: &wgpu::Buffer,
        first: usize,
        n: usize,
        divisor: f32,
    ) -> Result<()> {
        let started = Instant::now();
        match comm {
            Some(c) => c.all_reduce_sum(&self.send[..n], &mut self.recv[..n])?,
            None => self.recv[..n].copy_from_slice(&self.send[..n]),
        }
        let reduced = Instant::now();
        self.timing.reduce_s += (reduced - started).as_secs_f64();
        for v in &mut self.recv[..n] {
            *v /= divisor;
        }
        gpu.queue
            .write_buffer(buffer, first as u64 * 4, bytemuck::cast_slice(&self.recv[..n]));
        self.timing.upload_s += reduced.elapsed().as_secs_f64();
        Ok(())
    }

    /// Replaces the first `elements` values of `buffer` with their sum over the
    /// ranks of `comm` divided by `divisor`, bucket by bucket. `extra` is copied
    /// to the host with the first bucket and returned (the loss statistics).
    pub fn all_reduce(
        &mut self,
        gpu: &Gpu,
        comm: Option<&dyn Collective>,
        buffer: &wgpu::Buffer,
        elements: usize,
        divisor: f32,
        mut extra: Option<(&wgpu::Buffer, u64)>,
    ) -> Result<Vec<u8>> {
        let mut extra_bytes = Vec::new();
        for first in (0..elements).step_by(self.bucket) {
            let n = self.bucket.min(elements - first);
            let got = self.download(gpu, buffer, first, n, extra.take())?;
            if first == 0 {
                extra_bytes = got;
            }
            self.reduce_upload(gpu, comm, buffer, first, n, divisor)?;
        }
        Ok(extra_bytes)
    }

    /// Reads the first `host.len()` values of `buffer` and adds them to `host`
    /// (`add`) or stores them there (gradient accumulation); `extra` as in
    /// [`GradientBuckets::all_reduce`].
    pub fn accumulate(
        &mut self,
        gpu: &Gpu,
        buffer: &wgpu::Buffer,
        host: &mut [f32],
        add: bool,
        mut extra: Option<(&wgpu::Buffer, u64)>,
    ) -> Result<Vec<u8>> {
        let mut extra_bytes = Vec::new();
        for first in (0..host.len()).step_by(self.bucket) {
            let n = self.bucket.min(host.len() - first);
            let got = self.download(gpu, buffer, first, n, extra.take())?;
            if first == 0 {
                extra_bytes = got;
            }
            let dst = &mut host[first..first + n];
            if add {
                for (d, s) in dst.iter_mut().zip(&self.send[..n]) {
                    *d += *s;
                }
            } else {
                dst.copy_from_slice(&self.send[..n]);
            }
        }
        Ok(extra_bytes)
    }

    /// Writes `host`'s sum over the ranks of `comm`, divided by `divisor`, into
    /// `buffer` from element 0, bucket by bucket.
    pub fn all_reduce_host(
        &mut self,
        gpu: &Gpu,
        comm: Option<&dyn Collective>,
        host: &[f32],
        buffer: &wgpu::Buffer,
        divisor: f32,
    ) -> Result<()> {
        for first in (0..host.len()).step_by(self.bucket) {
            let n = self.bucket.min(host.len() - first);
            self.send[..n].copy_from_slice(&host[first..first + n]);
            self.reduce_upload(gpu, comm, buffer, first, n, divisor)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_split_evenly_or_not_at_all() {
        assert_eq!(shard(64, 2, 0).unwrap(), 0..32);
        assert_eq!(shard(64, 2, 1).unwrap(), 32..64);
        assert_eq!(shard(9, 3, 2).unwrap(), 6..9);
        let e = shard(10, 4, 0).unwrap_err().to_string();
        assert!(e.starts_with("batch: ") && e.contains("multiple of 4"), "{e}");
    }

    #[test]
    fn checksums_see_one_bit() {
        let a = vec![0u8; 1001];
        let mut b = a.clone();
        b[1000] = 1;
        assert_ne!(checksum(&a), checksum(&b));
        assert_ne!(checksum(&a), checksum(&a[..1000]));
        assert_eq!(checksum(&a), checksum(&a.clone()));
    }

    #[test]
    fn disagreements_name_the_ranks() {
        assert_eq!(disagreement("weights", &[7, 7, 7]), None);
        let msg = disagreement("the weights (y)", &[7, 9, 7]).unwrap();
        assert_eq!(
            msg,
            "the weights (y) differ across ranks: ranks 0, 2 hold 0000000000000007; rank 1 holds 0000000000000009"
        );
    }
}
