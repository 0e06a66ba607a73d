//! Every WGSL kernel file is parsed and validated by naga with no optional
//! capabilities (the portable subset: no f16, subgroups, immediates or float
//! atomics) and written to SPIR-V, MSL, HLSL and GLSL: the Vulkan, Metal, DX12 and
//! GL translations are proven here without those machines. The binding table the
//! engine binds by (`kernels::ENTRIES`) is checked against what each entry point
//! really uses, and no entry point needs more than 8 storage buffers.

use naga::back::{glsl, hlsl, msl, spv};
use naga::valid::{Capabilities, ValidationFlags, Validator};
use sfnap::gpu::kernels::{source, ENTRIES, FILES};

fn module(name: &str) -> (naga::Module, naga::valid::ModuleInfo) {
    let src = source(name).expect("a built-in kernel file");
    let module = naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&src)));
    let info = Validator::new(ValidationFlags::all(), Capabilities::empty())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&src)));
    (module, info)
}

#[test]
fn every_kernel_file_translates_to_every_backend() {
    for (name, _) in FILES {
        let (module, info) = module(name);
        spv::write_vec(&module, &info, &spv::Options::default(), None).unwrap_or_else(|e| panic!("{name} spv: {e}"));
        msl::write_string(
            &module,
            &info,
            &msl::Options::default(),
            &msl::PipelineOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{name} msl: {e}"));
        let mut hlsl_out = String::new();
        hlsl::Writer::new(
            &mut hlsl_out,
            &hlsl::Options::default(),
            &hlsl::PipelineOptions::default(),
        )
        .write(&module, &info, None)
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
            glsl::Writer::new(&mut glsl_out, &module, &info, &options, &pipeline, Default::default())
                .and_then(|mut w| w.write())
                .unwrap_or_else(|e| panic!("{name}::{} glsl: {e}", ep.name));
        }
    }
}

#[test]
fn binding_table_matches_the_shaders_and_the_storage_limit() {
    let mut seen = 0;
    for (name, _) in FILES {
        let (module, info) = module(name);
        for (i, ep) in module.entry_points.iter().enumerate() {
            let uses = info.get_entry_point(i);
            let mut used: Vec<u32> = Vec::new();
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
            let table = ENTRIES
                .iter()
                .find(|(f, e, _)| f == name && *e == ep.name)
                .unwrap_or_else(|| panic!("{name}::{} is missing from kernels::ENTRIES", ep.name));
            assert_eq!(used, table.2, "{name}::{}: bindings used vs kernels::ENTRIES", ep.name);
            assert!(
                storage <= 8,
                "{name}::{} uses {storage} storage buffers (portable limit 8)",
                ep.name
            );
            seen += 1;
        }
    }
    assert_eq!(
        seen,
        ENTRIES.len(),
        "kernels::ENTRIES lists an entry point no shader has"
    );
}

/// No `return` may come before a barrier in an entry point that synchronizes:
/// browsers reject non-uniform barriers. Checked on the source: a kernel file's
/// entry points that return early must not reach `workgroupBarrier`.
#[test]
fn no_early_return_in_kernels_with_barriers() {
    for (name, body) in FILES {
        for func in body.split("@compute").skip(1) {
            let uses_barrier = func.contains("workgroup_sum") || func.contains("workgroupBarrier");
            assert!(
                !(uses_barrier && func.contains("return;")),
                "{name}: an entry point returns early and also synchronizes:\n{func}"
            );
        }
    }
}
