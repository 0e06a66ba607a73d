//! Every WGSL kernel file is parsed and validated by naga with no optional
//! capabilities (the portable subset: no f16, subgroups, immediates or float
//! atomics), but those of `kernels::SUBGROUP_FILES` with subgroups only, and
//! written to SPIR-V, MSL, HLSL and GLSL: the Vulkan, Metal, DX12 and GL
//! translations are proven here without those machines. The binding table the
//! engine binds by (`kernels::ENTRIES`) is checked against what each entry point
//! really uses, and no entry point needs more than 8 storage buffers.

mod wgsl;

use sfnap::gpu::kernels::{source, BF16_SUFFIX, ENTRIES, FILES, SUBGROUP_FILES};

fn module(name: &str) -> (naga::Module, naga::valid::ModuleInfo) {
    wgsl::validate_with(
        name,
        &source(name).expect("a built-in kernel file"),
        SUBGROUP_FILES.contains(&name),
    )
}

/// Only the files that say so use subgroups: the others pass without the capability.
#[test]
fn only_the_subgroup_files_need_subgroups() {
    for (name, _) in FILES.iter().filter(|(n, _)| !SUBGROUP_FILES.contains(n)) {
        wgsl::validate(name, &source(name).unwrap());
    }
    for name in SUBGROUP_FILES {
        let src = source(name).expect("a subgroup file is a built-in kernel file");
        let portable = naga::front::wgsl::parse_str(&src)
            .ok()
            .and_then(|m| wgsl::validator(false).validate(&m).ok());
        assert!(
            portable.is_none(),
            "{name} validates without subgroups: drop it from SUBGROUP_FILES"
        );
    }
}

#[test]
fn every_kernel_file_translates_to_every_backend() {
    for (name, _) in FILES {
        let (module, info) = module(name);
        wgsl::translate_to_every_backend(name, &module, &info);
    }
}

#[test]
fn binding_table_matches_the_shaders_and_the_storage_limit() {
    let mut seen = 0;
    for (name, _) in FILES {
        let (module, info) = module(name);
        for (i, ep) in module.entry_points.iter().enumerate() {
            let (used, storage) = wgsl::bindings_used(&module, &info, i);
            // A bf16-state variant shares its f32 file's entries and bindings.
            let file = name.strip_suffix(BF16_SUFFIX).unwrap_or(name);
            let table = ENTRIES
                .iter()
                .find(|e| e.file == file && e.name == ep.name)
                .unwrap_or_else(|| panic!("{name}::{} is missing from kernels::ENTRIES", ep.name));
            assert_eq!(
                used, table.bindings,
                "{name}::{}: bindings used vs kernels::ENTRIES",
                ep.name
            );
            assert!(
                storage <= 8,
                "{name}::{} uses {storage} storage buffers (portable limit 8)",
                ep.name
            );
            seen += usize::from(file == *name);
        }
    }
    assert_eq!(
        seen,
        ENTRIES.len(),
        "kernels::ENTRIES lists an entry point no shader has"
    );
}

/// No `return` may come before a barrier in an entry point that synchronizes:
/// browsers reject non-uniform barriers.
#[test]
fn no_early_return_in_kernels_with_barriers() {
    for (name, body) in FILES {
        wgsl::assert_no_early_return_before_barriers(name, body);
    }
}
