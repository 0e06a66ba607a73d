//! WGSL sources and compute pipelines.
//!
//! Every kernel file is compiled with `common.wgsl` (the `Step` and `Seg` structs)
//! and `reduce.wgsl` (the workgroup reduction) in front of it.

use std::collections::HashMap;

use crate::gpu::Gpu;

/// Declarations shared by every kernel file.
pub const COMMON: &str = concat!(
    include_str!("../../shaders/common.wgsl"),
    include_str!("../../shaders/reduce.wgsl")
);

/// Every kernel file: (name, source without the common prelude).
pub const FILES: &[(&str, &str)] = &[
    ("sf_step", include_str!("../../shaders/sf_step.wgsl")),
    ("adamw", include_str!("../../shaders/adamw.wgsl")),
    ("sf_plus", include_str!("../../shaders/sf_plus.wgsl")),
    ("polyak", include_str!("../../shaders/polyak.wgsl")),
    ("nap", include_str!("../../shaders/nap.wgsl")),
    ("mode", include_str!("../../shaders/mode.wgsl")),
    ("export", include_str!("../../shaders/export.wgsl")),
    // Layers (`nn`): each file numbers its own bindings, listed at its top.
    ("linear", include_str!("../../shaders/linear.wgsl")),
    ("norm", include_str!("../../shaders/norm.wgsl")),
    ("activation", include_str!("../../shaders/activation.wgsl")),
    ("loss", include_str!("../../shaders/loss.wgsl")),
    ("embedding", include_str!("../../shaders/embedding.wgsl")),
    ("attention", include_str!("../../shaders/attention.wgsl")),
    ("residual", include_str!("../../shaders/residual.wgsl")),
    // The optimizer race (`race`): 2D test functions; bindings listed at its top.
    ("race", include_str!("../../shaders/race.wgsl")),
];

/// The bindings each entry point uses: (file, entry, bindings). Binding numbers
/// mean the same in every file (0 step, 1 segment, 2 y, 3 g, 4 z, 5 v, 6 m, 7 x,
/// 8 partials, 9 chunks, 10 groups, 11 sf_plus state, 12 loss, 13 group norms,
/// 14-16 trace test, 17 chunk ids, 18 export destination).
pub const ENTRIES: &[(&str, &str, &[u32])] = &[
    ("sf_step", "sgd_sf_step", &[0, 1, 2, 3, 4]),
    ("sf_step", "adam_sf_step", &[0, 1, 2, 3, 4, 5]),
    ("sf_step", "adam_sf_momentum_step", &[0, 1, 2, 3, 4, 5, 6]),
    ("adamw", "adamw_step", &[0, 1, 2, 3, 5, 6]),
    ("sf_plus", "plus_sums", &[1, 3, 4, 7, 8, 9]),
    ("sf_plus", "plus_step", &[0, 1, 2, 3, 4, 5, 6, 7]),
    ("polyak", "plus_reduce", &[8, 11]),
    ("polyak", "plus_scalars", &[0, 11, 12]),
    ("polyak", "plus_trace", &[0, 11, 14, 15, 16]),
    ("nap", "norms_w", &[1, 2, 8, 9]),
    ("nap", "norms_sf", &[0, 1, 2, 4, 8, 9]),
    ("nap", "norms_plus", &[1, 4, 7, 8, 9]),
    ("nap", "group_norms", &[8, 10, 13, 17]),
    ("nap", "init_rho", &[10, 13]),
    ("nap", "project_w", &[1, 2, 9, 10, 13]),
    ("nap", "project_sf", &[0, 1, 2, 4, 9, 10, 13]),
    ("nap", "project_plus", &[0, 1, 2, 4, 7, 9, 10, 13]),
    ("mode", "to_eval", &[0, 1, 2, 4]),
    ("mode", "to_train", &[0, 1, 2, 4]),
    ("export", "x_into", &[0, 1, 2, 4, 18]),
    // Layers (`nn`): binding numbers are per file, see the .wgsl.
    ("linear", "matmul", &[0, 1, 2, 4]),
    ("linear", "matmul_bias", &[0, 1, 2, 3, 4]),
    ("linear", "matmul_block", &[0, 1, 2, 4]),
    ("linear", "matmul_block_bias", &[0, 1, 2, 3, 4]),
    ("linear", "column_sums", &[0, 5, 6]),
    ("norm", "norm_forward", &[0, 1, 2, 3, 4, 5, 6]),
    ("norm", "norm_forward_rows", &[0, 1, 2, 3, 4, 5, 6]),
    ("norm", "norm_backward_input", &[0, 1, 2, 5, 6, 7, 8]),
    ("norm", "norm_backward_input_rows", &[0, 1, 2, 5, 6, 7, 8]),
    ("norm", "norm_backward_params", &[0, 1, 5, 6, 7, 9, 10]),
    ("activation", "relu_forward", &[0, 1, 2]),
    ("activation", "relu_backward", &[0, 1, 3, 4]),
    ("activation", "gelu_forward", &[0, 1, 2]),
    ("activation", "gelu_backward", &[0, 1, 3, 4]),
    ("loss", "loss_rows", &[0, 1, 2, 3, 4, 5]),
    ("loss", "loss_rows_short", &[0, 1, 2, 3, 4, 5]),
    ("loss", "loss_mean", &[0, 3, 5, 6]),
    ("loss", "loss_backward", &[0, 1, 2, 4, 7]),
    ("embedding", "embedding_forward", &[0, 1, 2, 3]),
    ("embedding", "embedding_clear", &[0, 5]),
    ("embedding", "embedding_link", &[0, 1, 5, 6]),
    ("embedding", "embedding_backward", &[0, 4, 5, 6, 7]),
    ("attention", "attention_probs", &[0, 1, 2]),
    ("attention", "attention_values", &[0, 1, 2, 3]),
    ("attention", "attention_dscores", &[0, 1, 2, 4, 5]),
    ("attention", "attention_dqkv", &[0, 1, 2, 4, 5, 6]),
    ("attention", "attention_scores_block", &[0, 1, 2]),
    ("attention", "attention_softmax_rows", &[0, 2]),
    ("attention", "attention_values_block", &[0, 1, 2, 3]),
    ("attention", "attention_dp_block", &[0, 1, 4, 5]),
    ("attention", "attention_dsoftmax_rows", &[0, 2, 5]),
    ("attention", "attention_dqkv_block", &[0, 1, 2, 4, 5, 6]),
    // The optimizer race: binding numbers are per file, see race.wgsl.
    ("race", "race_grad", &[0, 1, 2, 3, 4, 5]),
    ("race", "race_gather", &[0, 1, 6, 7]),
    ("residual", "add", &[0, 1, 2, 3]),
];

/// The full source of kernel file `name` (prelude included).
pub fn source(name: &str) -> String {
    let (_, body) = FILES
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no kernel file `{name}`"));
    format!("{COMMON}\n{body}")
}

/// Compiled pipelines, built on first use and kept for the device's lifetime.
#[derive(Default)]
pub struct Kernels {
    modules: HashMap<&'static str, wgpu::ShaderModule>,
    pipelines: HashMap<(&'static str, &'static str), wgpu::ComputePipeline>,
}

impl Kernels {
    /// The pipeline of entry point `entry` in kernel file `file`.
    pub fn get(&mut self, device: &wgpu::Device, file: &'static str, entry: &'static str) -> wgpu::ComputePipeline {
        if let Some(p) = self.pipelines.get(&(file, entry)) {
            return p.clone();
        }
        let module = self
            .modules
            .entry(file)
            .or_insert_with(|| {
                device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(file),
                    source: wgpu::ShaderSource::Wgsl(source(file).into()),
                })
            })
            .clone();
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        });
        self.pipelines.insert((file, entry), pipeline.clone());
        pipeline
    }

    /// A bind group for `entry` of `file`, taking from `resources` the bindings it uses.
    pub fn bind(
        &mut self,
        gpu: &Gpu,
        file: &'static str,
        entry: &'static str,
        resources: &[(u32, wgpu::BindingResource<'_>)],
    ) -> wgpu::BindGroup {
        let pipeline = self.get(&gpu.device, file, entry);
        let used = bindings(file, entry);
        let entries: Vec<_> = resources
            .iter()
            .filter(|(b, _)| used.contains(b))
            .map(|(binding, resource)| wgpu::BindGroupEntry {
                binding: *binding,
                resource: resource.clone(),
            })
            .collect();
        assert_eq!(
            entries.len(),
            used.len(),
            "{file}::{entry}: missing a binding of {used:?}"
        );
        gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(entry),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        })
    }
}

/// The bindings used by `entry` of `file` (see [`ENTRIES`]).
pub fn bindings(file: &str, entry: &str) -> &'static [u32] {
    ENTRIES
        .iter()
        .find(|(f, e, _)| *f == file && *e == entry)
        .map(|(_, _, b)| *b)
        .unwrap_or_else(|| panic!("no entry point {file}::{entry}"))
}
