//! The tensor arena: many named tensors packed into one buffer per role.
//!
//! Every tensor starts at a 256-byte-aligned offset (64 f32s) and the padding
//! between tensors stays zero, so element kernels can sweep the whole buffer as
//! vec4s without knowing where tensors begin: one dispatch for the whole model.
//! Tensors that take weight decay come first, so a single boundary (`wd_end`)
//! tells a kernel whether an element decays. When the arena is larger than one
//! storage binding may be, it is cut into segments that are bound and
//! dispatched one by one.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, CHUNK};

/// f32 elements per alignment unit (256 bytes).
pub const ALIGN: usize = 64;

/// What the caller asks for: a named tensor of some shape.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    /// Unique name.
    pub name: String,
    /// Shape (row-major).
    pub shape: Vec<usize>,
    /// Whether weight decay applies (typically not for biases and norm gains).
    pub decay: bool,
}

impl TensorSpec {
    /// A tensor that takes weight decay.
    pub fn new(name: impl Into<String>, shape: &[usize]) -> Self {
        TensorSpec {
            name: name.into(),
            shape: shape.to_vec(),
            decay: true,
        }
    }

    /// The same tensor without weight decay.
    pub fn no_decay(mut self) -> Self {
        self.decay = false;
        self
    }
}

/// Where a tensor lives in the arena.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// Its name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Number of elements.
    pub len: usize,
    /// Offset in elements (a multiple of [`ALIGN`]).
    pub offset: usize,
    /// Whether weight decay applies.
    pub decay: bool,
}

/// A contiguous range of the arena bound and dispatched as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// First element (a multiple of [`ALIGN`]).
    pub start: usize,
    /// Number of elements (a multiple of [`ALIGN`]).
    pub len: usize,
    /// Its first chunk.
    pub first_chunk: usize,
    /// Number of chunks it holds.
    pub n_chunks: usize,
}

/// A piece of one tensor, at most [`CHUNK`] elements, starting at a multiple of
/// [`CHUNK`] from the tensor's start: the unit of every reduction. Chunks depend
/// only on the tensors, so sums are the same however the arena is segmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// First element (global).
    pub offset: usize,
    /// Number of elements.
    pub len: usize,
    /// Index of its tensor in [`Layout::slots`].
    pub tensor: usize,
}

/// Most workgroups one dispatch may have in a dimension (WebGPU's default limit).
pub const MAX_DISPATCH: usize = 65535;

/// Placement of every tensor, independent of any device.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Tensors in the order the caller gave them.
    pub slots: Vec<Slot>,
    /// Total elements (a multiple of [`ALIGN`]).
    pub total: usize,
    /// Elements `[0, wd_end)` take weight decay.
    pub wd_end: usize,
    /// Reduction chunks, in arena order.
    pub chunks: Vec<Chunk>,
    /// The binding ranges, in order, covering `[0, total)`; each holds whole chunks.
    pub segments: Vec<Segment>,
}

impl Layout {
    /// Places `specs`: decayed tensors first, each aligned; segments of at most
    /// `max_binding_bytes` bytes.
    pub fn new(specs: &[TensorSpec], max_binding_bytes: u64) -> Result<Layout> {
        if specs.is_empty() {
            return Err(Error::invalid("tensors", "the arena needs at least one tensor"));
        }
        let mut slots: Vec<Slot> = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            if specs[..i].iter().any(|s| s.name == spec.name) {
                return Err(Error::invalid(format!("tensors.{}", spec.name), "name used twice"));
            }
            let len: usize = spec.shape.iter().product();
            if len == 0 {
                return Err(Error::invalid(
                    format!("tensors.{}", spec.name),
                    format!("shape {:?} has no elements", spec.shape),
                ));
            }
            slots.push(Slot {
                name: spec.name.clone(),
                shape: spec.shape.clone(),
                len,
                offset: 0,
                decay: spec.decay,
            });
        }
        let mut next = 0;
        let mut wd_end = 0;
        for decay in [true, false] {
            for slot in slots.iter_mut().filter(|s| s.decay == decay) {
                slot.offset = next;
                next += slot.len.next_multiple_of(ALIGN);
            }
            if decay {
                wd_end = next;
            }
        }
        let mut order: Vec<usize> = (0..slots.len()).collect();
        order.sort_by_key(|&i| slots[i].offset);
        let mut chunks = Vec::new();
        for i in order {
            let slot = &slots[i];
            for at in (0..slot.len).step_by(CHUNK) {
                chunks.push(Chunk {
                    offset: slot.offset + at,
                    len: CHUNK.min(slot.len - at),
                    tensor: i,
                });
            }
        }
        let segments = segment(&chunks, next, max_binding_bytes)?;
        Ok(Layout {
            slots,
            total: next,
            wd_end,
            chunks,
            segments,
        })
    }

    /// The slot of tensor `name`.
    pub fn slot(&self, name: &str) -> Result<&Slot> {
        self.slots
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| Error::invalid(name, "no such tensor in the arena"))
    }

    /// Total bytes of one role's buffer.
    pub fn bytes(&self) -> u64 {
        self.total as u64 * 4
    }
}

/// Cuts `[0, total)` into segments of at most `max_binding_bytes`, only at chunk
/// starts, with at most [`MAX_DISPATCH`] chunks each.
fn segment(chunks: &[Chunk], total: usize, max_binding_bytes: u64) -> Result<Vec<Segment>> {
    let limit = (max_binding_bytes / 4) as usize / ALIGN * ALIGN;
    if limit < CHUNK {
        return Err(Error::invalid(
            "max_binding_bytes",
            format!(
                "{max_binding_bytes} bytes: a storage binding must hold at least one chunk ({} bytes)",
                CHUNK * 4
            ),
        ));
    }
    let mut segments = Vec::new();
    let mut first = 0;
    while first < chunks.len() {
        let start = chunks[first].offset / ALIGN * ALIGN;
        let mut end = first + 1;
        while end < chunks.len() && end - first < MAX_DISPATCH && chunks[end].offset + chunks[end].len - start <= limit
        {
            end += 1;
        }
        let stop = chunks.get(end).map_or(total, |c| c.offset);
        segments.push(Segment {
            start,
            len: stop - start,
            first_chunk: first,
            n_chunks: end - first,
        });
        first = end;
    }
    Ok(segments)
}

/// The arena on a device: the layout plus the parameter and gradient buffers.
/// Optimizer state buffers (z, v, m, x) share the layout.
pub struct Arena {
    /// Placement of every tensor.
    pub layout: Layout,
    /// Parameters (y for the Schedule-Free kinds in train mode).
    pub params: wgpu::Buffer,
    /// Gradients, written by the backward pass (or by `write_grad`).
    pub grads: wgpu::Buffer,
}

impl Arena {
    /// Allocates a zeroed arena for `specs`, splitting it into segments at the
    /// device's storage binding limit or at `max_binding_bytes`, whichever is smaller.
    pub fn new(gpu: &Gpu, specs: &[TensorSpec], max_binding_bytes: Option<u64>) -> Result<Arena> {
        let device_max = gpu.limits.max_storage_buffer_binding_size;
        let max = max_binding_bytes.map_or(device_max, |m| m.min(device_max));
        let layout = Layout::new(specs, max)?;
        if layout.bytes() > gpu.limits.max_buffer_size {
            return Err(Error::invalid(
                "tensors",
                format!(
                    "the arena needs {} bytes per role, more than this device's max_buffer_size {}",
                    layout.bytes(),
                    gpu.limits.max_buffer_size
                ),
            ));
        }
        let params = gpu.storage("params", layout.bytes());
        let grads = gpu.storage("grads", layout.bytes());
        Ok(Arena { layout, params, grads })
    }

    fn checked(&self, name: &str, values: usize) -> Result<&Slot> {
        let slot = self.layout.slot(name)?;
        if values != slot.len {
            return Err(Error::invalid(
                name,
                format!("has {values} values, but shape {:?} needs {}", slot.shape, slot.len),
            ));
        }
        Ok(slot)
    }

    /// Writes tensor `name` of `buffer` (any buffer with this layout).
    pub fn write_to(&self, gpu: &Gpu, buffer: &wgpu::Buffer, name: &str, values: &[f32]) -> Result<()> {
        let slot = self.checked(name, values.len())?;
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(format!("{name}[{i}]"), "is not finite"));
        }
        gpu.queue
            .write_buffer(buffer, slot.offset as u64 * 4, bytemuck::cast_slice(values));
        Ok(())
    }

    /// Writes the parameters of tensor `name`.
    pub fn write(&self, gpu: &Gpu, name: &str, values: &[f32]) -> Result<()> {
        self.write_to(gpu, &self.params, name, values)
    }

    /// Writes the gradient of tensor `name`.
    pub fn write_grad(&self, gpu: &Gpu, name: &str, values: &[f32]) -> Result<()> {
        self.write_to(gpu, &self.grads, name, values)
    }

    /// Reads tensor `name` of `buffer` (any buffer with this layout).
    pub async fn read_from_async(&self, gpu: &Gpu, buffer: &wgpu::Buffer, name: &str) -> Result<Vec<f32>> {
        let slot = self.layout.slot(name)?;
        gpu.read_async(buffer, slot.offset, slot.len).await
    }

    /// [`Arena::read_from_async`], waiting for the device (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_from(&self, gpu: &Gpu, buffer: &wgpu::Buffer, name: &str) -> Result<Vec<f32>> {
        pollster::block_on(self.read_from_async(gpu, buffer, name))
    }

    /// The Euclidean norm, in f64, of the tensors `names` in `buffer` (one laid
    /// out as the arena's parameters: its gradients, x), read back (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn norm_of(&self, gpu: &Gpu, buffer: &wgpu::Buffer, names: &[String]) -> Result<f64> {
        let mut total = 0.0;
        for name in names {
            total += self
                .read_from(gpu, buffer, name)?
                .iter()
                .map(|&v| f64::from(v).powi(2))
                .sum::<f64>();
        }
        Ok(total.sqrt())
    }

    /// Reads the parameters of tensor `name` (native only; see [`Arena::read_from_async`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read(&self, gpu: &Gpu, name: &str) -> Result<Vec<f32>> {
        self.read_from(gpu, &self.params, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decayed_first_aligned_and_segmented() {
        let specs = [
            TensorSpec::new("b", &[3]).no_decay(),
            TensorSpec::new("w", &[5, 30]),
            TensorSpec::new("w2", &[1]),
        ];
        let l = Layout::new(&specs, 1 << 20).unwrap();
        assert_eq!(l.slot("w").unwrap().offset, 0);
        assert_eq!(l.slot("w2").unwrap().offset, 192);
        assert_eq!(l.wd_end, 256);
        assert_eq!(l.slot("b").unwrap().offset, 256);
        assert_eq!(l.total, 320);
        assert_eq!(l.segments.len(), 1);
    }

    #[test]
    fn segments_hold_whole_chunks() {
        let specs = [
            TensorSpec::new("a", &[CHUNK + 1]),
            TensorSpec::new("b", &[3 * CHUNK]),
            TensorSpec::new("c", &[5]),
        ];
        let l = Layout::new(&specs, (2 * CHUNK * 4) as u64).unwrap();
        let chunk_lens: Vec<_> = l.chunks.iter().map(|c| c.len).collect();
        assert_eq!(chunk_lens, vec![CHUNK, 1, CHUNK, CHUNK, CHUNK, 5]);
        let segs: Vec<_> = l
            .segments
            .iter()
            .map(|s| (s.start, s.len, s.first_chunk, s.n_chunks))
            .collect();
        let b = l.slot("b").unwrap().offset;
        let c = l.slot("c").unwrap().offset;
        assert_eq!(
            segs,
            vec![
                (0, b, 0, 2),
                (b, 2 * CHUNK, 2, 2),
                (b + 2 * CHUNK, c + 64 - b - 2 * CHUNK, 4, 2)
            ]
        );
        assert!(l.segments.iter().all(|s| s.len * 4 <= 2 * CHUNK * 4));
        assert!(Layout::new(&specs, 1024).is_err());
    }

    #[test]
    fn bad_specs_name_the_tensor() {
        let e = Layout::new(&[TensorSpec::new("a", &[2, 0])], 1 << 20).unwrap_err();
        assert!(e.to_string().contains("tensors.a"), "{e}");
        let e = Layout::new(&[TensorSpec::new("a", &[2]), TensorSpec::new("a", &[1])], 1 << 20).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
    }
}
