//! Checkpoint integrity: the checksum refuses damaged bytes anywhere (data,
//! offsets, metadata), the content checks refuse non-finite state even under a
//! valid checksum, older formats are refused by name, and the same state
//! always gives the same bytes.

#[path = "support/ckpt.rs"]
mod ckpt;
mod common;

use common::gpu;
use serde_json::Value;
use sfnap::checkpoint::{self, FORMAT};
use sfnap::optim::Kind;

fn seed(kind: Kind, tag: &str) -> Vec<u8> {
    let dir = common::empty_dir(tag);
    let (bytes, _, _) = ckpt::make(&gpu(), kind, &dir.join("c.safetensors"));
    std::fs::remove_dir_all(&dir).ok();
    bytes
}

fn refused(bytes: &[u8], needle: &str) -> String {
    match ckpt::load(bytes) {
        Ok(_) => panic!("accepted; expected an error containing `{needle}`"),
        Err(e) => {
            assert!(e.contains(needle), "expected `{needle}` in: {e}");
            assert!(e.starts_with("ckpt.safetensors: checkpoint: "), "{e}");
            assert!(!e.contains('\n'), "{e}");
            e
        }
    }
}

/// The checksum is what the documentation says: recomputing it by the recipe
/// (digits as zeros, CRC-32 of the file) leaves a fresh checkpoint unchanged.
#[test]
fn the_checksum_follows_its_documented_definition() {
    let bytes = seed(Kind::SfPlus, "ck-def");
    let h = ckpt::header(&bytes);
    let meta: Value = serde_json::from_str(h["__metadata__"]["sfnap"].as_str().unwrap()).unwrap();
    assert_eq!(meta["format"], FORMAT);
    let stored = meta["checksum"].as_str().unwrap();
    assert!(stored.len() == 8 && stored != "00000000", "{stored}");
    let mut again = bytes.clone();
    assert!(ckpt::reseal(&mut again));
    assert!(again == bytes, "the documented recipe gives another checksum");
    let loaded = ckpt::load(&bytes).unwrap();
    assert_eq!(loaded.meta, ckpt::meta());
}

/// Every single-bit flip anywhere in the data area is refused.
#[test]
fn every_bit_flip_in_the_data_area_is_refused() {
    let bytes = seed(Kind::SfPlus, "ck-flip");
    let start = ckpt::data_start(&bytes);
    assert!(
        bytes.len() - start > 400,
        "a checkpoint of {} data bytes",
        bytes.len() - start
    );
    for i in start..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            refused(&b, "checksum mismatch");
        }
    }
}

/// Flips in the header (tensor table and metadata) are refused too, whatever
/// they break first.
#[test]
fn bit_flips_in_the_header_are_refused() {
    let bytes = seed(Kind::AdamwSf, "ck-hflip");
    for i in (0..ckpt::data_start(&bytes)).step_by(3) {
        for bit in [0, 3, 6] {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            refused(&b, "");
        }
    }
}

/// Two tensors of the same size with their `data_offsets` swapped: still a
/// valid safetensors file, but refused.
#[test]
fn swapped_data_offsets_are_refused() {
    let bytes = seed(Kind::AdamwSf, "ck-swap");
    let mut h = ckpt::header(&bytes);
    let y = h["y.w"]["data_offsets"].clone();
    let z = h["z.w"]["data_offsets"].clone();
    h["y.w"]["data_offsets"] = z;
    h["z.w"]["data_offsets"] = y;
    let swapped = ckpt::with_header(&bytes, &h);
    assert!(safetensors::SafeTensors::deserialize(&swapped).is_ok());
    refused(&swapped, "checksum mismatch");
}

/// The batch sampler's state and the step counter live in the metadata; an
/// edit of either is refused.
#[test]
fn edited_rng_or_step_is_refused() {
    let bytes = seed(Kind::AdamwSf, "ck-meta");
    let rng = ckpt::edit_metadata(&bytes, |m| m["rng"] = Value::from(ckpt::meta().rng + 1));
    refused(&rng, "checksum mismatch");
    let step = ckpt::edit_metadata(&bytes, |m| m["step"] = Value::from(4));
    refused(&step, "checksum mismatch");
    // Resealed, the step edit is still caught: the host scalars count 3 steps.
    let mut step = step;
    assert!(ckpt::reseal(&mut step));
    refused(&step, "step counters disagree (step 4, host scalars 3)");
    // An unchanged round trip through the editing helpers is accepted.
    let same = ckpt::edit_metadata(&bytes, |_| {});
    assert!(same == bytes);
}

/// Writes `value` over the f32 at `byte` of tensor `name`, and reseals.
fn poke(bytes: &[u8], name: &str, byte: usize, value: f32) -> Vec<u8> {
    let r = ckpt::tensor_range(bytes, name);
    let mut b = bytes.to_vec();
    b[r.start + byte..r.start + byte + 4].copy_from_slice(&value.to_le_bytes());
    assert!(ckpt::reseal(&mut b));
    b
}

/// sf_plus's device state is stored as raw bytes (U8); its fields are read
/// back and a NaN is refused by name, even under a valid checksum.
#[test]
fn non_finite_scalar_state_is_refused_by_field() {
    let bytes = seed(Kind::SfPlus, "ck-scalar");
    // PlusState: e_prev, lr_max, w_sum, ... ; StepScalars: gamma, c, beta, ...
    refused(
        &poke(&bytes, "opt.plus_state", 8, f32::NAN),
        "opt.plus_state.w_sum is not finite",
    );
    refused(
        &poke(&bytes, "opt.plus_state", 4, f32::INFINITY),
        "opt.plus_state.lr_max is not finite",
    );
    refused(
        &poke(&bytes, "opt.step", 0, f32::NEG_INFINITY),
        "opt.step.gamma is not finite",
    );
    refused(&poke(&bytes, "opt.step", 4, f32::NAN), "opt.step.c is not finite");
    // Unsealed, the same edit is a checksum mismatch.
    let r = ckpt::tensor_range(&bytes, "opt.plus_state");
    let mut b = bytes.clone();
    b[r.start + 8..r.start + 12].copy_from_slice(&f32::NAN.to_le_bytes());
    refused(&b, "checksum mismatch");
}

#[test]
fn non_finite_weights_and_state_are_refused_by_element() {
    let bytes = seed(Kind::AdamwSf, "ck-tensor");
    refused(&poke(&bytes, "y.w", 5 * 4, f32::NAN), "y.w[5] is not finite");
    refused(&poke(&bytes, "z.b", 3 * 4, f32::INFINITY), "z.b[3] is not finite");
    refused(&poke(&bytes, "x.w", 0, f32::NAN), "x.w[0] is not finite");
}

/// The host scalars come from JSON; an f32 field beyond f32's range reads as
/// infinity and is refused, as are settings the optimizer would refuse.
#[test]
fn non_finite_host_scalars_and_bad_settings_are_refused() {
    let bytes = seed(Kind::AdamwSf, "ck-host");
    let mut b = ckpt::edit_metadata(&bytes, |m| {
        m["host_scalars"]["last"]["gamma"] = serde_json::json!(1e39);
    });
    assert!(ckpt::reseal(&mut b));
    refused(&b, "host_scalars.last.gamma is not finite (inf)");
    let mut b = ckpt::edit_metadata(&bytes, |m| m["host_scalars"]["cfg"]["lr"] = serde_json::json!(1e38));
    assert!(ckpt::reseal(&mut b));
    refused(&b, "host_scalars.cfg: optimizer.lr: must lie in [0, 1e37]");
}

/// A checkpoint of the previous format (no checksum) is refused, naming both formats.
#[test]
fn older_formats_are_refused_by_name() {
    let bytes = seed(Kind::AdamwSf, "ck-old");
    let old = ckpt::edit_metadata(&bytes, |m| {
        m["format"] = Value::from("sfnap-checkpoint-2");
        m.as_object_mut().unwrap().shift_remove("checksum");
    });
    let e = refused(&old, "format `sfnap-checkpoint-2`, expected `sfnap-checkpoint-6`");
    assert!(e.contains("format 2 carries no checksum"), "{e}");
}

/// Format 4 (f32 state only; its step scalars end in a `pad` array where format
/// 5 keeps bf16 state's seed and rounding) is still read.
#[test]
fn format_4_is_still_read() {
    let bytes = seed(Kind::AdamwSf, "ck-4");
    let mut four = ckpt::edit_metadata(&bytes, |m| {
        m["format"] = Value::from("sfnap-checkpoint-4");
        let last = m["host_scalars"]["last"].as_object_mut().unwrap();
        last.shift_remove("seed");
        last.shift_remove("rounding");
        last.insert("pad".into(), serde_json::json!([0, 0, 0]));
    });
    assert!(ckpt::reseal(&mut four));
    ckpt::load(&four).unwrap();
}

/// The same state gives the same bytes, and a checkpoint applied to a fresh
/// optimizer and saved again gives its own bytes back.
#[test]
fn the_same_state_gives_the_same_bytes_through_load_and_apply() {
    let gpu = gpu();
    let dir = common::empty_dir("ck-same");
    let (a, _, _) = ckpt::make(&gpu, Kind::SfPlus, &dir.join("a.safetensors"));
    let (b, _, _) = ckpt::make(&gpu, Kind::SfPlus, &dir.join("b.safetensors"));
    assert!(a == b, "two identical runs wrote different checkpoints");
    let path = dir.join("a.safetensors");
    let loaded = checkpoint::load(&path).unwrap();
    let (arena, mut opt) = ckpt::fresh(&gpu, Kind::SfPlus);
    loaded.apply(&path, &gpu, &arena, &mut opt).unwrap();
    let again = dir.join("again.safetensors");
    checkpoint::save(&again, &gpu, &arena, &opt, &arena.params, &ckpt::meta()).unwrap();
    assert!(
        std::fs::read(&again).unwrap() == a,
        "load, apply, save changed the bytes"
    );
    std::fs::remove_dir_all(&dir).ok();
}
