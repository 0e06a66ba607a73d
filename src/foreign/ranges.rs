//! The caller's buffer ranges and their checks: bounds, alignment, usage flags,
//! overlaps and the device they belong to, each failure naming the tensor.

use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// `len` f32 elements of a buffer the caller owns, from byte `offset`.
#[derive(Debug, Clone, Copy)]
pub struct BufferRange<'a> {
    /// The caller's buffer (created on the same device as sfnap's [`Gpu`]).
    pub buffer: &'a wgpu::Buffer,
    /// Byte offset of the first element: a multiple of 4.
    pub offset: u64,
    /// Number of f32 elements.
    pub len: usize,
}

impl<'a> BufferRange<'a> {
    /// `len` f32 elements of `buffer` from byte `offset`.
    pub fn new(buffer: &'a wgpu::Buffer, offset: u64, len: usize) -> Self {
        BufferRange { buffer, offset, len }
    }

    /// Its size in bytes.
    pub fn bytes(&self) -> u64 {
        self.len as u64 * 4
    }
}

/// One tensor of a step: where its parameters are written and its gradient read.
#[derive(Debug, Clone, Copy)]
pub struct ForeignTensor<'a> {
    /// The parameters: y after every step.
    pub param: BufferRange<'a>,
    /// The gradient, taken at y; the same length as `param`.
    pub grad: BufferRange<'a>,
}

/// What a range is for, which decides the usage flags its buffer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Initial parameters, read once.
    Initial,
    /// Parameters (y) written by a step or handed back by a resume.
    Param,
    /// A gradient, read by a step.
    Grad,
    /// Where x is written.
    X,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Initial | Role::Param => "param",
            Role::Grad => "grad",
            Role::X => "x",
        }
    }

    fn usage(self) -> (wgpu::BufferUsages, &'static str) {
        match self {
            Role::Initial | Role::Grad => (wgpu::BufferUsages::COPY_SRC, "COPY_SRC (sfnap copies from it)"),
            Role::Param | Role::X => (wgpu::BufferUsages::COPY_DST, "COPY_DST (sfnap copies into it)"),
        }
    }
}

/// A range with the tensor and role it belongs to, for messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Named<'a> {
    /// The range.
    pub range: BufferRange<'a>,
    /// Index of its tensor.
    pub tensor: usize,
    /// Name of its tensor.
    pub name: &'a str,
    /// What it is for.
    pub role: Role,
}

impl Named<'_> {
    /// The field an error names: `tensors[i] `name`.role`.
    fn field(&self) -> String {
        format!("tensors[{}] `{}`.{}", self.tensor, self.name, self.role.name())
    }

    fn span(&self) -> String {
        format!(
            "bytes {}..{}",
            self.range.offset,
            self.range.offset + self.range.bytes()
        )
    }
}

/// Checks every range of one call: `expected[i]` is tensor i's element count.
/// Each range must lie inside its buffer at a 4-byte-aligned offset, with the
/// usage its role needs; every buffer must belong to `gpu`'s device (probed in
/// an error scope, nothing is submitted); no two ranges may overlap.
pub(crate) fn check(gpu: &Gpu, ranges: &[Named<'_>], expected: &[usize], probe: &wgpu::Buffer) -> Result<()> {
    for r in ranges {
        let want = expected[r.tensor];
        if r.range.len != want {
            return Err(Error::invalid(
                r.field(),
                format!("has {} elements, but the tensor has {want}", r.range.len),
            ));
        }
        if r.range.offset % 4 != 0 {
            return Err(Error::invalid(
                r.field(),
                format!("offset {} is not a multiple of 4 bytes", r.range.offset),
            ));
        }
        let size = r.range.buffer.size();
        if r.range.offset.checked_add(r.range.bytes()).is_none_or(|end| end > size) {
            return Err(Error::invalid(
                r.field(),
                format!("{} lie outside its buffer of {size} bytes", r.span()),
            ));
        }
        let (usage, what) = r.role.usage();
        if !r.range.buffer.usage().contains(usage) {
            return Err(Error::invalid(
                r.field(),
                format!("its buffer lacks the usage {what}; it has {:?}", r.range.buffer.usage()),
            ));
        }
    }
    check_device(gpu, ranges, probe)?;
    check_overlaps(ranges)
}

/// Two ranges sharing a byte of one buffer are refused, naming both.
fn check_overlaps(ranges: &[Named<'_>]) -> Result<()> {
    let mut order: Vec<&Named<'_>> = ranges.iter().collect();
    order.sort_by(|a, b| (a.range.buffer, a.range.offset).cmp(&(b.range.buffer, b.range.offset)));
    // The range reaching furthest so far in the current buffer.
    let mut reach: Option<&Named<'_>> = None;
    for r in order {
        if let Some(prev) = reach.filter(|p| p.range.buffer == r.range.buffer) {
            let prev_end = prev.range.offset + prev.range.bytes();
            if r.range.offset < prev_end {
                return Err(Error::invalid(
                    r.field(),
                    format!(
                        "{} overlap {} ({}) in the same buffer",
                        r.span(),
                        prev.field(),
                        prev.span()
                    ),
                ));
            }
            if r.range.offset + r.range.bytes() <= prev_end {
                continue;
            }
        }
        reach = Some(r);
    }
    Ok(())
}

/// Records a 4-byte copy to or from each buffer (once, at its first range) in an
/// encoder of `gpu`'s device that is finished but never submitted, inside a
/// validation error scope: a buffer of another device fails it. On failure, each
/// buffer is probed alone to name the first tensor that uses it. wgpu tells
/// devices apart only within one `wgpu::Instance`: a buffer of a device opened
/// from another instance is not caught.
fn check_device(gpu: &Gpu, ranges: &[Named<'_>], probe: &wgpu::Buffer) -> Result<()> {
    // Each buffer's first range, in the ranges' order.
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by(|&a, &b| ranges[a].range.buffer.cmp(ranges[b].range.buffer).then(a.cmp(&b)));
    order.dedup_by(|b, a| ranges[*a].range.buffer == ranges[*b].range.buffer);
    order.sort_unstable();
    let firsts: Vec<&Named<'_>> = order.iter().map(|&i| &ranges[i]).collect();
    let fails = |some: &[&Named<'_>]| -> Option<String> {
        let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        for r in some {
            // In bounds and aligned: the checks before this one passed.
            let (buffer, offset) = (r.range.buffer, r.range.offset);
            if buffer.usage().contains(wgpu::BufferUsages::COPY_SRC) {
                enc.copy_buffer_to_buffer(buffer, offset, probe, 0, 4);
            } else {
                enc.copy_buffer_to_buffer(probe, 0, buffer, offset, 4);
            }
        }
        drop(enc.finish());
        pollster::block_on(scope.pop()).map(|e| e.to_string())
    };
    if fails(&firsts).is_none() {
        return Ok(());
    }
    for r in &firsts {
        if let Some(e) = fails(std::slice::from_ref(r)) {
            let said = e.split_whitespace().collect::<Vec<_>>().join(" ");
            return Err(Error::invalid(
                r.field(),
                format!("its buffer cannot be used on sfnap's device (a buffer of another device?): {said}"),
            ));
        }
    }
    Err(Error::Gpu(
        "the caller's buffers failed a copy on sfnap's device".into(),
    ))
}
