//! naga's checks of a WGSL kernel file, shared by `tests/shaders.rs` (the engine's
//! files) and `web/tests/shaders.rs` (the race's file): validation with no optional
//! capabilities (the portable subset: no f16, subgroups, immediates or float
//! atomics), translation to every backend's language, and the bindings each entry
//! point really uses.

use naga::back::{glsl, hlsl, msl, spv};
use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};
use naga::Module;

/// Parses and validates `src` (kernel file `name`) with no optional capabilities;
/// errors are shown in the source.
pub fn validate(name: &str, src: &str) -> (Module, ModuleInfo) {
    validate_with(name, src, false)
}

/// [`validate`], allowing subgroup operations in compute shaders when `subgroups`.
pub fn validate_with(name: &str, src: &str, subgroups: bool) -> (Module, ModuleInfo) {
    let module = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
    let info = validator(subgroups)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
    (module, info)
}

/// A validator with every check and no optional capability, but subgroup
/// operations in compute shaders when `subgroups`.
pub fn validator(subgroups: bool) -> Validator {
    if !subgroups {
        return Validator::new(ValidationFlags::all(), Capabilities::empty());
    }
    let mut v = Validator::new(ValidationFlags::all(), Capabilities::SUBGROUP);
    v.subgroup_stages(naga::valid::ShaderStages::COMPUTE)
        .subgroup_operations(naga::valid::SubgroupOperationSet::all());
    v
}

/// Writes `module` as SPIR-V, MSL, HLSL and GLSL ES 3.1 (each entry point): the
/// Vulkan, Metal, DX12 and GL translations.
pub fn translate_to_every_backend(name: &str, module: &Module, info: &ModuleInfo) {
    spv::write_vec(module, info, &spv::Options::default(), None).unwrap_or_else(|e| panic!("{name} spv: {e}"));
    msl::write_string(module, info, &msl::Options::default(), &msl::PipelineOptions::default())
        .unwrap_or_else(|e| panic!("{name} msl: {e}"));
    let mut hlsl_out = String::new();
    hlsl::Writer::new(
        &mut hlsl_out,
        &hlsl::Options::default(),
        &hlsl::PipelineOptions::default(),
    )
    .write(module, info, None)
    .unwrap_or_else(|e| panic!("{name} hlsl: {e}"));
    for ep in &module.entry_points {
        let mut glsl_out = String::new();
        let options = glsl::Options {
            version: glsl::Version::Embedded {
                version: 310,
                is_webgl: false,
            },
            ..Default::default()
        };
        let pipeline = glsl::PipelineOptions {
            shader_stage: ep.stage,
            entry_point: ep.name.clone(),
            multiview: None,
        };
        glsl::Writer::new(&mut glsl_out, module, info, &options, &pipeline, Default::default())
            .and_then(|mut w| w.write())
            .unwrap_or_else(|e| panic!("{name}::{} glsl: {e}", ep.name));
    }
}

/// The bindings entry point `index` of `module` uses, sorted, and how many of them
/// are storage buffers.
pub fn bindings_used(module: &Module, info: &ModuleInfo, index: usize) -> (Vec<u32>, usize) {
    let uses = info.get_entry_point(index);
    let mut used = Vec::new();
    let mut storage = 0;
    for (handle, var) in module.global_variables.iter() {
        if uses[handle].is_empty() {
            continue;
        }
        if let Some(b) = &var.binding {
            used.push(b.binding);
            if matches!(var.space, naga::AddressSpace::Storage { .. }) {
                storage += 1;
            }
        }
    }
    used.sort();
    (used, storage)
}

/// Browsers reject barriers after a non-uniform `return`, so no entry point of a
/// kernel file's `body` that synchronizes may return early (checked on the source).
pub fn assert_no_early_return_before_barriers(name: &str, body: &str) {
    for func in body.split("@compute").skip(1) {
        let uses_barrier = func.contains("workgroup_sum") || func.contains("workgroupBarrier");
        assert!(
            !(uses_barrier && func.contains("return;")),
            "{name}: an entry point returns early and also synchronizes:\n{func}"
        );
    }
}
