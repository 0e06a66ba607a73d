//! The race's kernel file (`web/shaders/race.wgsl`, with the engine's prelude) gets
//! the engine's own shader checks (`tests/shaders.rs`, sharing `tests/wgsl/`):
//! validated by naga with no optional capabilities (the portable subset the browser
//! runs) and written to SPIR-V, MSL, HLSL and GLSL; the bindings `race::kernels()`
//! lists for each entry point are what the entry point really uses, within the
//! portable limit of 8 storage buffers; no early return before a barrier.

#[path = "../../tests/wgsl/mod.rs"]
mod wgsl;

use sfnap_web::race::kernels;

#[test]
fn the_race_kernels_translate_to_every_backend() {
    let (module, info) = wgsl::validate("race", &kernels().source);
    wgsl::translate_to_every_backend("race", &module, &info);
}

#[test]
fn the_listed_bindings_are_what_each_entry_point_uses() {
    let file = kernels();
    let (module, info) = wgsl::validate("race", &file.source);
    for (i, ep) in module.entry_points.iter().enumerate() {
        let (used, storage) = wgsl::bindings_used(&module, &info, i);
        let listed = file
            .entries
            .iter()
            .find(|(e, _)| *e == ep.name)
            .unwrap_or_else(|| panic!("race::{} is missing from race::kernels()", ep.name));
        assert_eq!(used, listed.1, "race::{}: bindings used vs race::kernels()", ep.name);
        assert!(storage <= 8, "race::{} uses {storage} storage buffers", ep.name);
    }
    assert_eq!(
        module.entry_points.len(),
        file.entries.len(),
        "race::kernels() lists an entry point the shader does not have"
    );
}

#[test]
fn no_early_return_in_kernels_with_barriers() {
    wgsl::assert_no_early_return_before_barriers("race", include_str!("../shaders/race.wgsl"));
}
