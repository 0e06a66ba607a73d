//! What an adapter can run: sfnap's operations checked against its limits and
//! features, so a user on an unusual GPU knows before training.

use crate::gpu::CHUNK;

/// One of sfnap's operations and what it needs from the adapter.
#[derive(Debug, Clone, PartialEq)]
pub struct Support {
    /// The operation.
    pub operation: &'static str,
    /// `None` when the adapter can run it, else what is missing.
    pub missing: Option<String>,
}

/// Storage buffers one entry point binds at most (sf_plus's element pass, NaP's projection).
pub const STORAGE_BUFFERS_NEEDED: u32 = 8;
/// Invocations per workgroup every kernel uses.
pub const WORKGROUP_SIZE: u32 = 256;
/// Workgroup memory of the reductions: 256 `vec2<f32>`.
pub const WORKGROUP_BYTES: u32 = 256 * 8;

/// Checks every operation against an adapter's capabilities (`subgroup_min_size`:
/// its `AdapterInfo`'s).
pub fn check(
    limits: &wgpu::Limits,
    downlevel: &wgpu::DownlevelCapabilities,
    features: wgpu::Features,
    subgroup_min_size: u32,
) -> Vec<Support> {
    let mut kernels = missing(limits);
    if !downlevel.flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS) {
        kernels.insert(0, "compute shaders".to_string());
    }
    let all = (!kernels.is_empty()).then(|| kernels.join(", "));
    let timing = (!features.contains(wgpu::Features::TIMESTAMP_QUERY))
        .then(|| "timestamp queries (bench falls back to wall-clock timing)".to_string());
    vec![
        Support {
            operation: "optimizer steps, NaP, eval/train (all kinds)",
            missing: all,
        },
        Support {
            operation: "GPU-side timing in `sfnap bench`",
            missing: timing,
        },
        Support {
            operation: "small matrix products through subgroups",
            missing: subgroup_matmul_missing(features, subgroup_min_size)
                .map(|m| format!("{m} (the portable kernel computes the same)")),
        },
    ]
}

/// What keeps the subgroup matmul (`shaders/linear_subgroup.wgsl`) off a device
/// with `features` and subgroups of at least `subgroup_min_size` invocations, or
/// `None`: it needs `Features::SUBGROUP`, subgroups of at least 8, and a native
/// backend (a browser's WGSL would need `enable subgroups`).
pub fn subgroup_matmul_missing(features: wgpu::Features, subgroup_min_size: u32) -> Option<String> {
    if cfg!(target_arch = "wasm32") {
        Some("a native backend".into())
    } else if !features.contains(wgpu::Features::SUBGROUP) {
        Some("subgroup operations".into())
    } else if subgroup_min_size < 8 {
        Some(format!("subgroups of at least 8 invocations (has {subgroup_min_size})"))
    } else {
        None
    }
}

/// What an opened device lacks for sfnap's kernels (judged by its limits: a
/// device without compute shaders has zero compute limits), or `None`.
pub fn check_device(limits: &wgpu::Limits) -> Option<String> {
    let mut lacks = missing(limits);
    if limits.max_compute_workgroups_per_dimension == 0 {
        lacks.insert(0, "compute shaders".to_string());
    }
    (!lacks.is_empty()).then(|| lacks.join(", "))
}

/// The limits the kernels need that `limits` do not meet, one phrase each.
fn missing(limits: &wgpu::Limits) -> Vec<String> {
    let mut kernels = Vec::new();
    if limits.max_storage_buffers_per_shader_stage < STORAGE_BUFFERS_NEEDED {
        kernels.push(format!(
            "{STORAGE_BUFFERS_NEEDED} storage buffers per stage (has {})",
            limits.max_storage_buffers_per_shader_stage
        ));
    }
    if limits.max_compute_invocations_per_workgroup < WORKGROUP_SIZE
        || limits.max_compute_workgroup_size_x < WORKGROUP_SIZE
    {
        kernels.push(format!("workgroups of {WORKGROUP_SIZE} invocations"));
    }
    if limits.max_compute_workgroup_storage_size < WORKGROUP_BYTES {
        kernels.push(format!("{WORKGROUP_BYTES} bytes of workgroup memory"));
    }
    if limits.max_storage_buffer_binding_size < (CHUNK * 4) as u64 {
        kernels.push(format!("storage bindings of at least {} bytes", CHUNK * 4));
    }
    kernels
}

/// One line per operation: `ok` or what is missing.
pub fn describe(list: &[Support]) -> Vec<String> {
    list.iter()
        .map(|s| match &s.missing {
            None => format!("{}: ok", s.operation),
            Some(m) => format!("{}: missing {m}", s.operation),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webgpu_defaults_run_everything() {
        let s = check(
            &wgpu::Limits::default(),
            &wgpu::DownlevelCapabilities::default(),
            wgpu::Features::empty(),
            4,
        );
        assert_eq!(s[0].missing, None);
        assert!(s[1].missing.is_some());
        assert!(s[2].missing.as_deref().unwrap().starts_with("subgroup operations"));
    }

    #[test]
    fn too_few_storage_buffers_are_named() {
        let limits = wgpu::Limits {
            max_storage_buffers_per_shader_stage: 4,
            ..Default::default()
        };
        let s = check(
            &limits,
            &wgpu::DownlevelCapabilities::default(),
            wgpu::Features::TIMESTAMP_QUERY,
            8,
        );
        assert!(s[0]
            .missing
            .as_deref()
            .unwrap()
            .contains("8 storage buffers per stage (has 4)"));
        assert_eq!(s[1].missing, None);
    }

    #[test]
    fn the_subgroup_matmul_needs_subgroups_of_eight() {
        let sg = wgpu::Features::SUBGROUP;
        assert_eq!(subgroup_matmul_missing(sg, 8), None);
        assert_eq!(subgroup_matmul_missing(sg, 32), None);
        assert!(subgroup_matmul_missing(sg, 4).unwrap().contains("(has 4)"));
        assert_eq!(
            subgroup_matmul_missing(wgpu::Features::empty(), 32).unwrap(),
            "subgroup operations"
        );
    }

    #[test]
    fn a_device_without_compute_is_named() {
        assert_eq!(check_device(&wgpu::Limits::default()), None);
        let webgl = wgpu::Limits::downlevel_webgl2_defaults();
        assert!(check_device(&webgl).unwrap().starts_with("compute shaders"));
    }
}
