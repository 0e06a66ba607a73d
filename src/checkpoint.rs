//! Checkpoints as safetensors: the x weights (what you ship), the training
//! weights y, the optimizer's state and step counters, and the run's settings.
//! Written atomically (a temporary file, synced, then renamed), so an
//! interrupted save never destroys the previous checkpoint.
//!
//! # Integrity
//!
//! Every checkpoint carries a checksum, and [`load`] refuses a file whose bytes
//! do not match it: once the file parses as safetensors with sfnap's metadata,
//! the checksum is checked before anything in it is used. The checksum is the
//! CRC-32 (IEEE 802.3, the polynomial of zlib, gzip and PNG) of **the whole
//! file**, with the checksum's own eight hex digits read as `0`s: the
//! safetensors header (every tensor's name, dtype, shape and `data_offsets`),
//! the metadata (format, step, settings, the batch sampler's `rng`, the host
//! scalars) and the data area, in file order. In the file the digits sit in the
//! metadata as `\"checksum\":\"1a2b3c4d\"` (lowercase hex); to check a file by
//! hand, set those eight digits to `00000000` and take zlib's `crc32` of the
//! result. CRC-32 catches every single-bit flip and every burst of up to 32
//! flipped bits anywhere in the file, and misses other damage about one time in
//! 2^32; moved `data_offsets` and edited metadata change the header's bytes, so
//! they are caught as well. It guards against damage, not forgery: anyone can
//! recompute it (as they could an unkeyed cryptographic hash, which would only
//! cost more), so the content checks below hold for a file with a valid
//! checksum too.
//!
//! Then [`load`] checks the content, all without a GPU: every `F32` tensor
//! (and `BF16` state tensor: bf16 optimizer state) holds finite values; the `opt.*` tensors (the per-step scalars,
//! sf_plus's device state and NaP's group table, stored as raw bytes) have their struct's size, and
//! their float fields are finite (NaP's rho inside its range); the host scalars are finite and their
//! optimizer settings valid; the step counters agree. [`Loaded::apply`] then
//! checks that every tensor the model and optimizer need is there with its
//! dtype and shape.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::arena::Arena;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nap::GroupRow;
use crate::optim::plus::PlusState;
use crate::optim::scalars::{HostScalars, StepScalars};
use crate::optim::GpuOptimizer;

/// The name of NaP's group table among the optimizer's scalar buffers.
const NAP_GROUPS: &str = "nap_groups";

/// The format tag stored in every checkpoint's metadata. Format 3 added the
/// checksum, format 4 sf_plus's step cap (a longer `opt.step`), format 5 bf16
/// optimizer state (`BF16` state tensors; the step scalars' rounding seed),
/// format 6 NaP's group table (`opt.nap_groups`: each group's rho, the norm it
/// projects to). Formats 4 and 5 are still read (4 holds f32 state only; neither
/// carries rho, which a resume then measures again on its starting parameters, as
/// before); older formats are refused.
pub const FORMAT: &str = "sfnap-checkpoint-6";

/// The earlier formats still read: without NaP's group table, and (4) with f32 state only.
const EARLIER: [&str; 2] = ["sfnap-checkpoint-5", "sfnap-checkpoint-4"];

/// The one metadata key: safetensors keeps metadata in a hash map, whose order
/// changes from run to run, so everything sits under one key as a JSON object
/// with a fixed field order, and identical runs write identical bytes.
const KEY: &str = "sfnap";

/// How the checksum's field starts in the file: the metadata is a JSON string
/// inside the safetensors header's JSON, so its quotes are escaped.
const CHECKSUM_FIELD: &[u8] = br#"\"checksum\":\""#;

/// The checksum's value while it is computed.
const CHECKSUM_ZERO: &str = "00000000";

/// The metadata, in the order it is written.
#[derive(serde::Serialize)]
struct Header {
    format: String,
    checksum: String,
    step: u64,
    config: String,
    rng: u64,
    host_scalars: HostScalars,
}

/// The fields of [`Header`], in order.
const HEADER_FIELDS: [&str; 6] = ["format", "checksum", "step", "config", "rng", "host_scalars"];

/// Field `name` of the metadata; the error names it (`metadata.step: ...`).
fn field<T: serde::de::DeserializeOwned>(
    path: &Path,
    fields: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<T> {
    let v = fields
        .get(name)
        .ok_or_else(|| ckpt_err(path, format!("metadata.{name}: missing")))?;
    T::deserialize(v).map_err(|e| ckpt_err(path, format!("metadata.{name}: {e}")))
}

/// What a checkpoint carries besides tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    /// Steps taken.
    pub step: u64,
    /// The run's settings as JSON (compared on resume).
    pub config: String,
    /// State of the run's batch sampler.
    pub rng: u64,
}

fn ckpt_err(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::invalid(path.display().to_string(), format!("checkpoint: {msg}"))
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The tensor-name prefix of an optimizer state buffer (sf_plus's explicit x is
/// `state_x`, apart from the exported evaluation weights `x`).
fn state_name(buffer: &'static str) -> &'static str {
    if buffer == "x" {
        "state_x"
    } else {
        buffer
    }
}

/// The name prefix of the tensors a run keeps beyond the model and the
/// optimizer ([`save_with`]): raw bytes (`U8`), e.g. a reinforcement-learning
/// agent's replay buffer and environments.
pub const EXTRA: &str = "run.";

/// Saves the run's state to `path`. `x` is a buffer holding the exported x weights.
pub fn save(path: &Path, gpu: &Gpu, arena: &Arena, opt: &GpuOptimizer, x: &wgpu::Buffer, meta: &Meta) -> Result<()> {
    save_with(path, gpu, arena, opt, x, meta, &[])
}

/// [`save`] with `extra` tensors of raw bytes, stored as `run.NAME` (`U8`) and
/// read back by [`Loaded::extra`].
pub fn save_with(
    path: &Path,
    gpu: &Gpu,
    arena: &Arena,
    opt: &GpuOptimizer,
    x: &wgpu::Buffer,
    meta: &Meta,
    extra: &[(String, Vec<u8>)],
) -> Result<()> {
    let total = arena.layout.total;
    let mut whole: Vec<(String, Vec<u8>, Dtype)> = Vec::new();
    // bf16 state is stored as it is on the device: two bf16 to a little-endian
    // word, the even element first, which is safetensors' BF16 layout.
    let (state_dtype, state_size) = if opt.state_is_bf16() {
        (Dtype::BF16, 2)
    } else {
        (Dtype::F32, 4)
    };
    let state = opt
        .state_buffers()
        .into_iter()
        .map(|(n, b)| (state_name(n), b, state_dtype, state_size));
    for (prefix, buffer, dtype, size) in [("x", x, Dtype::F32, 4), ("y", &arena.params, Dtype::F32, 4)]
        .into_iter()
        .chain(state)
    {
        let bytes = gpu.read::<u8>(buffer, 0, total * size)?;
        whole.push((prefix.to_string(), bytes, dtype));
    }
    let mut tensors: Vec<(String, Vec<usize>, Dtype, &[u8])> = Vec::new();
    for (prefix, bytes, dtype) in &whole {
        let size = dtype.bitsize() / 8;
        for slot in &arena.layout.slots {
            let data = &bytes[slot.offset * size..(slot.offset + slot.len) * size];
            tensors.push((format!("{prefix}.{}", slot.name), slot.shape.clone(), *dtype, data));
        }
    }
    let scalars: Vec<(String, Vec<u8>)> = opt
        .scalar_buffers()
        .into_iter()
        .map(|(n, b)| Ok((format!("opt.{n}"), gpu.read::<u8>(b, 0, b.size() as usize)?)))
        .collect::<Result<_>>()?;
    for (name, bytes) in &scalars {
        tensors.push((name.clone(), vec![bytes.len()], Dtype::U8, bytes));
    }
    let extra: Vec<(String, &Vec<u8>)> = extra.iter().map(|(n, b)| (format!("{EXTRA}{n}"), b)).collect();
    for (name, bytes) in &extra {
        tensors.push((name.clone(), vec![bytes.len()], Dtype::U8, bytes));
    }
    let bytes = encode(path, tensors, meta, opt.host_scalars())?;
    crate::output::write_atomic(path, &bytes)
}

/// The file's bytes: the tensors and the metadata, sealed with the checksum.
fn encode(
    path: &Path,
    tensors: Vec<(String, Vec<usize>, Dtype, &[u8])>,
    meta: &Meta,
    host: &HostScalars,
) -> Result<Vec<u8>> {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .into_iter()
        .map(|(n, shape, dtype, data)| {
            TensorView::new(dtype, shape, data)
                .map(|v| (n, v))
                .map_err(|e| ckpt_err(path, e))
        })
        .collect::<Result<_>>()?;
    let header = Header {
        format: FORMAT.to_string(),
        checksum: CHECKSUM_ZERO.to_string(),
        step: meta.step,
        config: meta.config.clone(),
        rng: meta.rng,
        host_scalars: host.clone(),
    };
    let header = serde_json::to_string(&header).map_err(|e| ckpt_err(path, e))?;
    let metadata = HashMap::from([(KEY.to_string(), header)]);
    let mut bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| ckpt_err(path, e))?;
    let at = checksum_at(&bytes, CHECKSUM_ZERO)
        .ok_or_else(|| ckpt_err(path, "the checksum's place in the header was not found"))?;
    let sum = format!("{:08x}", crc32fast::hash(&bytes));
    bytes[at..at + 8].copy_from_slice(sum.as_bytes());
    Ok(bytes)
}

/// Where the eight digits of the checksum `value` sit in `bytes`: the one
/// occurrence of `\"checksum\":\"VALUE\"` in the safetensors header, or None if
/// there is not exactly one.
fn checksum_at(bytes: &[u8], value: &str) -> Option<usize> {
    let header_len = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let header = bytes.get(8..8usize.checked_add(header_len)?)?;
    let mut pattern = CHECKSUM_FIELD.to_vec();
    pattern.extend_from_slice(value.as_bytes());
    pattern.extend_from_slice(br#"\""#);
    let mut found = header
        .windows(pattern.len())
        .enumerate()
        .filter(|(_, w)| *w == pattern.as_slice())
        .map(|(i, _)| 8 + i + CHECKSUM_FIELD.len());
    match (found.next(), found.next()) {
        (Some(at), None) => Some(at),
        _ => None,
    }
}

/// The checksum of `bytes` as defined in the module documentation, with the
/// stored digits at `at` read as zeros.
fn checksum(bytes: &[u8], at: usize) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[..at]);
    h.update(CHECKSUM_ZERO.as_bytes());
    h.update(&bytes[at + 8..]);
    h.finalize()
}

/// A checkpoint read from disk and checked (see the module documentation),
/// not yet applied.
pub struct Loaded {
    /// Its metadata.
    pub meta: Meta,
    host: HostScalars,
    bytes: Vec<u8>,
    /// Whether its format carries NaP's group table (format 6 on).
    has_rho: bool,
}

/// Reads `path` and checks it: format, checksum and content (see the module
/// documentation); nothing here needs a GPU.
pub fn load(path: &Path) -> Result<Loaded> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    load_bytes(path, bytes)
}

/// [`load`] for a checkpoint's bytes already in memory; `path` only names it in errors.
pub fn load_bytes(path: &Path, bytes: Vec<u8>) -> Result<Loaded> {
    let st = SafeTensors::deserialize(&bytes).map_err(|e| ckpt_err(path, format!("not a safetensors file: {e}")))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| ckpt_err(path, e))?;
    let md = header
        .metadata()
        .as_ref()
        .ok_or_else(|| ckpt_err(path, "no metadata: not an sfnap checkpoint"))?;
    let Some(json) = md.get(KEY) else {
        let found = md.get("format").map_or("none".to_string(), |f| format!("`{f}`"));
        return Err(ckpt_err(path, format!("format {found}, expected `{FORMAT}`")));
    };
    let fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(json).map_err(|e| ckpt_err(path, format!("metadata: {e}")))?;
    let format: String = field(path, &fields, "format")?;
    if format != FORMAT && !EARLIER.contains(&format.as_str()) {
        return Err(ckpt_err(
            path,
            format!(
                "format `{format}`, expected `{FORMAT}` (of the earlier formats only {} are read: format 2 carries no checksum, format 3 a shorter optimizer state)",
                EARLIER.join(" and ")
            ),
        ));
    }
    let has_rho = format == FORMAT;
    if let Some(key) = fields.keys().find(|k| !HEADER_FIELDS.contains(&k.as_str())) {
        return Err(ckpt_err(path, format!("metadata.{key}: unknown field")));
    }
    let header = Header {
        format,
        checksum: field(path, &fields, "checksum")?,
        step: field(path, &fields, "step")?,
        config: field(path, &fields, "config")?,
        rng: field(path, &fields, "rng")?,
        host_scalars: field(path, &fields, "host_scalars")?,
    };
    let stored = header.checksum.as_str();
    if stored.len() != 8 || !stored.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(ckpt_err(
            path,
            format!("checksum {stored:?} is not 8 lowercase hex digits"),
        ));
    }
    let at = checksum_at(&bytes, stored)
        .ok_or_else(|| ckpt_err(path, "checksum: its field is not in the header exactly once"))?;
    let computed = format!("{:08x}", checksum(&bytes, at));
    if computed != stored {
        return Err(ckpt_err(
            path,
            format!("checksum mismatch (stored {stored}, computed {computed}): the file is damaged"),
        ));
    }
    verify_tensors(&st).map_err(|msg| ckpt_err(path, msg))?;
    let host = header.host_scalars;
    check_host_scalars(&host).map_err(|msg| ckpt_err(path, msg))?;
    if host.steps() != header.step {
        return Err(ckpt_err(
            path,
            format!(
                "step counters disagree (step {}, host scalars {})",
                header.step,
                host.steps()
            ),
        ));
    }
    let meta = Meta {
        step: header.step,
        config: header.config,
        rng: header.rng,
    };
    Ok(Loaded {
        meta,
        host,
        bytes,
        has_rho,
    })
}

/// The float fields of an `opt.*` tensor, if its layout is known: the struct it
/// holds (as raw bytes, the GPU buffer's contents) read back from `data`.
fn scalar_fields(name: &str, data: &[u8]) -> Option<std::result::Result<Vec<(&'static str, f32)>, String>> {
    fn read<T: bytemuck::Pod>(name: &str, data: &[u8]) -> std::result::Result<T, String> {
        let size = std::mem::size_of::<T>();
        let expected = size.max(16).next_multiple_of(16);
        if data.len() != expected {
            return Err(format!("tensor `{name}` has {} bytes, expected {expected}", data.len()));
        }
        Ok(bytemuck::pod_read_unaligned(&data[..size]))
    }
    match name {
        "opt.step" => Some(read::<StepScalars>(name, data).map(|s| s.float_fields().to_vec())),
        "opt.plus_state" => Some(read::<PlusState>(name, data).map(|s| s.float_fields().to_vec())),
        "opt.nap_groups" => Some(nap_rho(name, data)),
        _ => None,
    }
}

/// The rho of each row of NaP's group table (`opt.nap_groups`), which must be
/// whole rows, each rho finite and inside [`crate::nap::RHO_RANGE`].
fn nap_rho(name: &str, data: &[u8]) -> std::result::Result<Vec<(&'static str, f32)>, String> {
    let row = std::mem::size_of::<GroupRow>();
    if data.is_empty() || !data.len().is_multiple_of(row) {
        return Err(format!(
            "tensor `{name}` has {} bytes, not whole rows of {row}",
            data.len()
        ));
    }
    let (lo, hi) = crate::nap::RHO_RANGE;
    let mut fields = Vec::new();
    for (i, chunk) in data.chunks_exact(row).enumerate() {
        let r: GroupRow = bytemuck::pod_read_unaligned(chunk);
        let rho = r.rho as f64;
        if rho.is_finite() && !(lo..=hi).contains(&rho) {
            return Err(format!("{name}[{i}].rho is {rho}, outside [{lo:e}, {hi:e}]"));
        }
        fields.push(("rho", r.rho));
    }
    Ok(fields)
}

/// Every tensor: `F32` data finite, and `opt.*` (`U8`, raw structs) of the
/// right size with finite float fields. The error names the tensor, and the
/// element or field.
fn verify_tensors(st: &SafeTensors<'_>) -> std::result::Result<(), String> {
    let mut names = st.names();
    names.sort();
    for name in names {
        let t = st.tensor(name).map_err(|e| format!("tensor `{name}`: {e}"))?;
        match t.dtype() {
            Dtype::F32 if !name.starts_with("opt.") => {
                let bad = t
                    .data()
                    .chunks_exact(4)
                    .position(|b| !f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite());
                if let Some(i) = bad {
                    return Err(format!("{name}[{i}] is not finite"));
                }
            }
            Dtype::BF16 if !name.starts_with("opt.") => {
                let bad = t
                    .data()
                    .chunks_exact(2)
                    .position(|b| !crate::optim::bf16::widen(u16::from_le_bytes([b[0], b[1]])).is_finite());
                if let Some(i) = bad {
                    return Err(format!("{name}[{i}] is not finite"));
                }
            }
            Dtype::U8 if name.starts_with(EXTRA) => {}
            Dtype::U8 if name.starts_with("opt.") => {
                if let Some(fields) = scalar_fields(name, t.data()) {
                    for (field, v) in fields? {
                        if !v.is_finite() {
                            return Err(format!("{name}.{field} is not finite ({v})"));
                        }
                    }
                }
            }
            other => {
                return Err(format!(
                    "tensor `{name}` has dtype {other:?}, which no sfnap checkpoint holds"
                ))
            }
        }
    }
    Ok(())
}

/// Writes a tensor's bf16 bytes (`BF16` data, two bytes a value) into a bf16
/// state buffer at arena offset `offset` (even), padded with a zero to whole words.
pub fn write_bf16(gpu: &Gpu, buffer: &wgpu::Buffer, offset: usize, data: &[u8]) {
    let mut bytes = data.to_vec();
    bytes.resize(data.len().next_multiple_of(4), 0);
    gpu.queue.write_buffer(buffer, offset as u64 * 2, &bytes);
}

/// The host scalars: finite, and their optimizer settings valid.
fn check_host_scalars(host: &HostScalars) -> std::result::Result<(), String> {
    if let Some((field, v)) = host.float_fields().into_iter().find(|(_, v)| !v.is_finite()) {
        return Err(format!("host_scalars.{field} is not finite ({v})"));
    }
    host.config().validate().map_err(|e| format!("host_scalars.cfg: {e}"))
}

impl Loaded {
    /// The host scalars it carries.
    pub fn host_scalars(&self) -> &HostScalars {
        &self.host
    }

    /// The `F32` tensor `name` (`x.head.weight`: the exported evaluation weights
    /// of `head.weight`), which must have shape `shape`; `path` names the file in errors.
    pub fn tensor_f32(&self, path: &Path, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let st = SafeTensors::deserialize(&self.bytes).map_err(|e| ckpt_err(path, e))?;
        let t = st
            .tensor(name)
            .map_err(|_| ckpt_err(path, format!("tensor `{name}` is missing")))?;
        if t.dtype() != Dtype::F32 || t.shape() != shape {
            return Err(ckpt_err(
                path,
                format!(
                    "tensor `{name}` is {:?} {:?}, expected F32 {shape:?}",
                    t.dtype(),
                    t.shape()
                ),
            ));
        }
        Ok(bytemuck::pod_collect_to_vec(t.data()))
    }

    /// The bytes of the extra tensor `name` ([`save_with`]); `path` names the file in errors.
    pub fn extra(&self, path: &Path, name: &str) -> Result<Vec<u8>> {
        let st = SafeTensors::deserialize(&self.bytes).map_err(|e| ckpt_err(path, e))?;
        let full = format!("{EXTRA}{name}");
        let t = st
            .tensor(&full)
            .map_err(|_| ckpt_err(path, format!("tensor `{full}` is missing")))?;
        if t.dtype() != Dtype::U8 {
            return Err(ckpt_err(
                path,
                format!("tensor `{full}` is {:?}, expected U8", t.dtype()),
            ));
        }
        Ok(t.data().to_vec())
    }

    /// Writes the checkpoint into a freshly built arena and optimizer (same
    /// model and optimizer), after checking that every tensor they need is
    /// there with its dtype and shape, and that its NaP groups cover the same
    /// ranges. NaP's rho comes from the file (format 6 on), so the run continues
    /// whatever parameters the fresh optimizer started from.
    pub fn apply(self, path: &Path, gpu: &Gpu, arena: &Arena, opt: &mut GpuOptimizer) -> Result<()> {
        let st = SafeTensors::deserialize(&self.bytes).map_err(|e| ckpt_err(path, e))?;
        let fetch = |name: &str, dtype: Dtype, shape: &[usize]| -> Result<&[u8]> {
            let t = st
                .tensor(name)
                .map_err(|_| ckpt_err(path, format!("tensor `{name}` is missing")))?;
            if t.dtype() != dtype || t.shape() != shape {
                return Err(ckpt_err(
                    path,
                    format!(
                        "tensor `{name}` is {:?} {:?}, expected {dtype:?} {shape:?}",
                        t.dtype(),
                        t.shape()
                    ),
                ));
            }
            Ok(t.data())
        };
        for slot in &arena.layout.slots {
            let data = fetch(&format!("y.{}", slot.name), Dtype::F32, &slot.shape)?;
            arena.write_to(gpu, &arena.params, &slot.name, &bytemuck::pod_collect_to_vec(data))?;
        }
        let bf16 = opt.state_is_bf16();
        let dtype = if bf16 { Dtype::BF16 } else { Dtype::F32 };
        for (name, buffer) in opt.state_buffers() {
            for slot in &arena.layout.slots {
                let data = fetch(&format!("{}.{}", state_name(name), slot.name), dtype, &slot.shape)?;
                if bf16 {
                    write_bf16(gpu, buffer, slot.offset, data);
                } else {
                    arena.write_to(gpu, buffer, &slot.name, &bytemuck::pod_collect_to_vec(data))?;
                }
            }
        }
        for (name, buffer) in opt.scalar_buffers() {
            if name == NAP_GROUPS && !self.has_rho {
                // An earlier format: rho stays as measured on this run's start.
                continue;
            }
            let data = fetch(&format!("opt.{name}"), Dtype::U8, &[buffer.size() as usize])?;
            if name == NAP_GROUPS {
                opt.check_nap_table(data).map_err(|msg| ckpt_err(path, msg))?;
            }
            gpu.queue.write_buffer(buffer, 0, data);
        }
        opt.restore_host_scalars(self.host)
    }
}
