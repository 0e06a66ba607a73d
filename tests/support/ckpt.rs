//! Small checkpoints made by the real `checkpoint::save` on the GPU, and edits
//! of their bytes: the tensors' byte ranges, the metadata, and the checksum
//! recomputed exactly as the documentation of `sfnap::checkpoint` defines it.
#![allow(dead_code)]

use std::ops::Range;
use std::path::Path;

use serde_json::Value;
use sfnap::arena::{Arena, TensorSpec};
use sfnap::checkpoint::{self, Meta};
use sfnap::gpu::Gpu;
use sfnap::optim::{GpuOptimizer, Kind, OptimConfig};

/// Two tensors, `kind`, three steps of fixed gradients (and losses), saved at
/// step 3 by `checkpoint::save`: a real checkpoint of about 2 KB. Also returns
/// the arena and optimizer it was saved from.
pub fn make(gpu: &Gpu, kind: Kind, path: &Path) -> (Vec<u8>, Arena, GpuOptimizer) {
    let (arena, mut opt) = fresh(gpu, kind);
    for k in 0..3 {
        let g: Vec<f32> = (0..12).map(|i| ((i * 7 + k * 3) % 11) as f32 * 0.1 - 0.5).collect();
        arena.write_grad(gpu, "w", &g).unwrap();
        arena.write_grad(gpu, "b", &[0.3, -0.1, 0.2, 0.05]).unwrap();
        if opt.loss_buffer().is_some() {
            opt.write_loss(gpu, 2.0 / (k + 1) as f32).unwrap();
        }
        opt.step(gpu).unwrap();
    }
    opt.check(gpu).unwrap();
    checkpoint::save(path, gpu, &arena, &opt, &arena.params, &meta()).unwrap();
    (std::fs::read(path).unwrap(), arena, opt)
}

/// The metadata `make` saves.
pub fn meta() -> Meta {
    Meta {
        step: 3,
        config: r#"{"seed":7,"note":"a test run"}"#.to_string(),
        rng: 0x1234_5678_9abc_def0,
    }
}

/// The arena and a new optimizer of `kind`, before any step.
pub fn fresh(gpu: &Gpu, kind: Kind) -> (Arena, GpuOptimizer) {
    let specs = [TensorSpec::new("w", &[3, 4]), TensorSpec::new("b", &[4]).no_decay()];
    let arena = Arena::new(gpu, &specs, None).unwrap();
    let w: Vec<f32> = (0..12).map(|i| (i as f32 - 5.5) * 0.1).collect();
    arena.write(gpu, "w", &w).unwrap();
    arena.write(gpu, "b", &[0.1, -0.2, 0.3, 0.0]).unwrap();
    let cfg = match kind {
        Kind::SfPlus => OptimConfig::new(kind),
        _ => OptimConfig::new(kind).with_lr(0.01),
    };
    let opt = GpuOptimizer::new(gpu, &arena, &cfg, None).unwrap();
    (arena, opt)
}

/// Where the safetensors header (JSON) ends and the data area begins.
pub fn data_start(bytes: &[u8]) -> usize {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    8usize.saturating_add(usize::try_from(n).unwrap_or(usize::MAX))
}

/// The safetensors header as JSON (tensors and `__metadata__`).
pub fn header(bytes: &[u8]) -> Value {
    serde_json::from_slice(&bytes[8..data_start(bytes)]).unwrap()
}

/// The bytes of tensor `name` within the file.
pub fn tensor_range(bytes: &[u8], name: &str) -> Range<usize> {
    let h = header(bytes);
    let off = &h[name]["data_offsets"];
    let base = data_start(bytes);
    base + off[0].as_u64().unwrap() as usize..base + off[1].as_u64().unwrap() as usize
}

/// The file with its safetensors header replaced by `h` (padded with spaces
/// to a multiple of 8 bytes, as safetensors writes it); the checksum is not
/// updated.
pub fn with_header(bytes: &[u8], h: &Value) -> Vec<u8> {
    let mut text = serde_json::to_string(h).unwrap().into_bytes();
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[data_start(bytes)..]);
    out
}

/// The file with its sfnap metadata (the JSON object under `sfnap`) edited by `f`.
pub fn edit_metadata(bytes: &[u8], f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut h = header(bytes);
    let inner = h["__metadata__"]["sfnap"].as_str().unwrap().to_string();
    let mut v: Value = serde_json::from_str(&inner).unwrap();
    f(&mut v);
    h["__metadata__"]["sfnap"] = Value::String(serde_json::to_string(&v).unwrap());
    with_header(bytes, &h)
}

/// Recomputes the checksum as the documentation defines it: CRC-32 of the whole
/// file with the eight hex digits after `\"checksum\":\"` read as `0`s. False
/// if the field is not there exactly once (nothing is changed then).
pub fn reseal(bytes: &mut [u8]) -> bool {
    let pattern = br#"\"checksum\":\""#;
    if bytes.len() < 8 {
        return false;
    }
    let end = data_start(bytes).min(bytes.len());
    let hits: Vec<usize> = (8..end.saturating_sub(pattern.len() + 8))
        .filter(|&i| &bytes[i..i + pattern.len()] == pattern)
        .collect();
    let [at] = hits[..] else { return false };
    let at = at + pattern.len();
    bytes[at..at + 8].copy_from_slice(b"00000000");
    let sum = format!("{:08x}", crc32fast::hash(bytes));
    bytes[at..at + 8].copy_from_slice(sum.as_bytes());
    true
}

/// Loads `bytes` as a checkpoint (named `ckpt.safetensors` in errors); the error as text.
pub fn load(bytes: &[u8]) -> Result<checkpoint::Loaded, String> {
    checkpoint::load_bytes(Path::new("ckpt.safetensors"), bytes.to_vec()).map_err(|e| e.to_string())
}
