//! Checkpoints as safetensors: the x weights (what you ship), the training
//! weights y, the optimizer's state and step counters, and the run's settings.
//! Written atomically (a temporary file, synced, then renamed), so an
//! interrupted save never destroys the previous checkpoint.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::arena::Arena;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::optim::scalars::HostScalars;
use crate::optim::GpuOptimizer;

/// The format tag stored in every checkpoint's metadata.
pub const FORMAT: &str = "sfnap-checkpoint-2";

/// The one metadata key: safetensors keeps metadata in a hash map, whose order
/// changes from run to run, so everything sits under one key as a JSON object
/// with a fixed field order, and identical runs write identical bytes.
const KEY: &str = "sfnap";

/// The metadata, in the order it is written.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    step: u64,
    config: String,
    rng: u64,
    host_scalars: HostScalars,
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

/// Saves the run's state to `path`. `x` is a buffer holding the exported x weights.
pub fn save(path: &Path, gpu: &Gpu, arena: &Arena, opt: &GpuOptimizer, x: &wgpu::Buffer, meta: &Meta) -> Result<()> {
    let total = arena.layout.total;
    let mut whole: Vec<(String, Vec<u8>)> = Vec::new();
    let state = opt.state_buffers().into_iter().map(|(n, b)| (state_name(n), b));
    for (prefix, buffer) in [("x", x), ("y", &arena.params)].into_iter().chain(state) {
        let bytes = gpu.read::<u8>(buffer, 0, total * 4)?;
        whole.push((prefix.to_string(), bytes));
    }
    let mut tensors: Vec<(String, Vec<usize>, Dtype, &[u8])> = Vec::new();
    for (prefix, bytes) in &whole {
        for slot in &arena.layout.slots {
            let data = &bytes[slot.offset * 4..(slot.offset + slot.len) * 4];
            tensors.push((format!("{prefix}.{}", slot.name), slot.shape.clone(), Dtype::F32, data));
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
        step: meta.step,
        config: meta.config.clone(),
        rng: meta.rng,
        host_scalars: opt.host_scalars().clone(),
    };
    let header = serde_json::to_string(&header).map_err(|e| ckpt_err(path, e))?;
    let metadata = HashMap::from([(KEY.to_string(), header)]);
    let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| ckpt_err(path, e))?;
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` through a synced temporary file and a rename; on
/// Unix the directory is synced after the rename, so the new name survives a
/// power loss too.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        #[cfg(unix)]
        {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|source| Error::Write {
        path: path.display().to_string(),
        source,
    })
}

/// A checkpoint read from disk, checked, not yet applied.
pub struct Loaded {
    /// Its metadata.
    pub meta: Meta,
    host: HostScalars,
    bytes: Vec<u8>,
}

/// Reads and checks `path` (format, metadata).
pub fn load(path: &Path) -> Result<Loaded> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| ckpt_err(path, e))?;
    let md = header
        .metadata()
        .as_ref()
        .ok_or_else(|| ckpt_err(path, "no metadata: not an sfnap checkpoint"))?;
    let Some(json) = md.get(KEY) else {
        let found = md.get("format").map_or("none".to_string(), |f| format!("`{f}`"));
        return Err(ckpt_err(path, format!("format {found}, expected `{FORMAT}`")));
    };
    let header: Header = serde_json::from_str(json).map_err(|e| ckpt_err(path, format!("metadata: {e}")))?;
    if header.format != FORMAT {
        return Err(ckpt_err(
            path,
            format!("format `{}`, expected `{FORMAT}`", header.format),
        ));
    }
    let meta = Meta {
        step: header.step,
        config: header.config,
        rng: header.rng,
    };
    let host = header.host_scalars;
    if host.steps() != meta.step {
        return Err(ckpt_err(path, "step counters disagree"));
    }
    Ok(Loaded { meta, host, bytes })
}

impl Loaded {
    /// Writes the checkpoint into a freshly built arena and optimizer (same model and optimizer).
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
        let mut targets: Vec<(&str, &wgpu::Buffer)> = vec![("y", &arena.params)];
        targets.extend(opt.state_buffers().into_iter().map(|(n, b)| (state_name(n), b)));
        for (prefix, buffer) in targets {
            for slot in &arena.layout.slots {
                let data = fetch(&format!("{prefix}.{}", slot.name), Dtype::F32, &slot.shape)?;
                let values: Vec<f32> = bytemuck::pod_collect_to_vec(data);
                if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                    return Err(ckpt_err(path, format!("{prefix}.{}[{i}] is not finite", slot.name)));
                }
                arena.write_to(gpu, buffer, &slot.name, &values)?;
            }
        }
        for (name, buffer) in opt.scalar_buffers() {
            let data = fetch(&format!("opt.{name}"), Dtype::U8, &[buffer.size() as usize])?;
            gpu.queue.write_buffer(buffer, 0, data);
        }
        opt.restore_host_scalars(self.host)
    }
}
