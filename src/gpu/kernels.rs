//! WGSL kernel files and the compiled-pipeline cache every [`Gpu`] owns.
//!
//! sfnap's own files ([`FILES`]) are compiled with `common.wgsl` (the `Step` and
//! `Seg` structs) and `reduce.wgsl` (the workgroup reduction) in front of them;
//! some also start with `health.wgsl` (the health flags and the finiteness test)
//! or `elementwise.wgsl` (the element loop and the interpolation `x_of`/`y_of`,
//! functions only). WGSL has no includes: these preludes are concatenated.
//! A program that embeds sfnap registers its own files with
//! [`Gpu::register_kernels`]; both kinds are compiled once per device, on first
//! use, and bound and dispatched the same way (see [`crate::gpu::dispatch`]).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// Declarations shared by every built-in kernel file (and by a [`KernelFile`]
/// made with [`KernelFile::with_prelude`]).
pub const COMMON: &str = concat!(
    include_str!("../../shaders/common.wgsl"),
    include_str!("../../shaders/reduce.wgsl")
);

/// Every built-in kernel file: (name, source without the common prelude). The
/// optimizer files that check for values that are not finite start with
/// `shaders/health.wgsl` ([`crate::optim::Health`]; `polyak` too, for its
/// finiteness test), and the files that walk the element loop or convert between
/// x and y with `shaders/elementwise.wgsl`.
/// An optimizer kernel file with f32 state and with bf16 state (`<name>_bf16`):
/// its preludes, the state accessors (`shaders/state_f32.wgsl` or
/// `shaders/state_bf16.wgsl`), its body.
macro_rules! optimizer_file {
    ($name:literal, [$($prelude:literal),*]) => {
        [
            (
                $name,
                concat!(
                    $(include_str!(concat!("../../shaders/", $prelude, ".wgsl")),)*
                    include_str!("../../shaders/state_f32.wgsl"),
                    include_str!(concat!("../../shaders/", $name, ".wgsl"))
                ),
            ),
            (
                concat!($name, "_bf16"),
                concat!(
                    $(include_str!(concat!("../../shaders/", $prelude, ".wgsl")),)*
                    include_str!("../../shaders/state_bf16.wgsl"),
                    include_str!(concat!("../../shaders/", $name, ".wgsl"))
                ),
            ),
        ]
    };
}

/// The suffix of an optimizer file's bf16-state variant (`sf_step_bf16`).
pub const BF16_SUFFIX: &str = "_bf16";

/// Every built-in kernel file: (name, source without the common prelude). The
/// optimizer files that check for values that are not finite start with
/// `shaders/health.wgsl` ([`crate::optim::Health`]; `polyak` too, for its
/// finiteness test), and the files that walk the element loop or convert between
/// x and y with `shaders/elementwise.wgsl`. The files that touch the state
/// buffers come twice, with f32 and with bf16 state ([`BF16_SUFFIX`]).
pub const FILES: &[(&str, &str)] = &{
    const STATE: [[(&str, &str); 2]; 6] = [
        optimizer_file!("sf_step", ["health", "elementwise"]),
        optimizer_file!("adamw", ["health", "elementwise"]),
        optimizer_file!("sf_plus", ["health", "elementwise"]),
        optimizer_file!("nap", ["health", "elementwise"]),
        optimizer_file!("mode", ["elementwise"]),
        optimizer_file!("export", ["elementwise"]),
    ];
    const OTHER: [(&str, &str); 14] = [
        (
            "polyak",
            concat!(
                include_str!("../../shaders/health.wgsl"),
                include_str!("../../shaders/polyak.wgsl")
            ),
        ),
        ("chunks", include_str!("../../shaders/chunks.wgsl")),
        // Layers (`nn`): each file numbers its own bindings, listed at its top.
        (
            "linear",
            concat!(
                include_str!("../../shaders/matmul.wgsl"),
                include_str!("../../shaders/linear.wgsl")
            ),
        ),
        // The subgroup matmul, compiled only where `Gpu::subgroup_matmul` holds.
        (
            "linear_subgroup",
            concat!(
                include_str!("../../shaders/matmul.wgsl"),
                include_str!("../../shaders/linear_subgroup.wgsl")
            ),
        ),
        ("norm", include_str!("../../shaders/norm.wgsl")),
        ("activation", include_str!("../../shaders/activation.wgsl")),
        ("loss", include_str!("../../shaders/loss.wgsl")),
        ("embedding", include_str!("../../shaders/embedding.wgsl")),
        ("attention", include_str!("../../shaders/attention.wgsl")),
        ("residual", include_str!("../../shaders/residual.wgsl")),
        // The reinforcement-learning environments (`rl`): the generator,
        // `rl.wgsl`'s bindings and bookkeeping, then one environment's dynamics.
        (
            "cartpole",
            concat!(
                include_str!("../../shaders/philox.wgsl"),
                include_str!("../../shaders/rl.wgsl"),
                include_str!("../../shaders/cartpole.wgsl")
            ),
        ),
        (
            "acrobot",
            concat!(
                include_str!("../../shaders/philox.wgsl"),
                include_str!("../../shaders/rl.wgsl"),
                include_str!("../../shaders/acrobot.wgsl")
            ),
        ),
        // The DQN agent (`rl::agent`), numbering its own bindings.
        (
            "dqn",
            concat!(
                include_str!("../../shaders/philox.wgsl"),
                include_str!("../../shaders/dqn.wgsl")
            ),
        ),
        // `sfnap bench`'s bandwidth reference (numbers its own bindings).
        (
            "bench",
            concat!(
                include_str!("../../shaders/elementwise.wgsl"),
                include_str!("../../shaders/bench.wgsl")
            ),
        ),
    ];
    let mut all = [("", ""); 26];
    let mut i = 0;
    while i < 6 {
        all[2 * i] = STATE[i][0];
        all[2 * i + 1] = STATE[i][1];
        i += 1;
    }
    let mut j = 0;
    while j < 14 {
        all[12 + j] = OTHER[j];
        j += 1;
    }
    all
};

/// The kernel files that need subgroup operations (`Features::SUBGROUP`): compiled
/// only where [`Gpu::subgroup_matmul`] holds. Every other file keeps to the portable
/// subset of WGSL.
pub const SUBGROUP_FILES: &[&str] = &["linear_subgroup"];

/// A built-in entry point: its kernel file, its name and the bindings (of
/// group 0) it uses. The optimizer's own are named constants, so a kind's
/// description ([`crate::optim::KindSpec`]) refers to its kernels by name, not
/// by two strings: a typo does not compile, and `tests/shaders.rs` holds every
/// entry of [`ENTRIES`] to the shader it names. An entry of an optimizer file
/// stands for its bf16-state variant too ([`Entry::with_state`]), with the same bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The kernel file ([`FILES`]).
    pub file: &'static str,
    /// The entry point's name in it.
    pub name: &'static str,
    /// The binding numbers it uses.
    pub bindings: &'static [u32],
}

impl Entry {
    /// An entry point of a built-in file.
    pub const fn new(file: &'static str, name: &'static str, bindings: &'static [u32]) -> Entry {
        Entry { file, name, bindings }
    }

    /// `sf_step.wgsl`'s `sgd_sf_step`.
    pub const SGD_SF_STEP: Entry = Entry::new("sf_step", "sgd_sf_step", &[0, 1, 2, 3, 4, 19]);
    /// `sf_step.wgsl`'s `adam_sf_step`.
    pub const ADAM_SF_STEP: Entry = Entry::new("sf_step", "adam_sf_step", &[0, 1, 2, 3, 4, 5, 19]);
    /// `sf_step.wgsl`'s `adam_sf_momentum_step`.
    pub const ADAM_SF_MOMENTUM_STEP: Entry = Entry::new("sf_step", "adam_sf_momentum_step", &[0, 1, 2, 3, 4, 5, 6, 19]);
    /// `adamw.wgsl`'s `adamw_step`.
    pub const ADAMW_STEP: Entry = Entry::new("adamw", "adamw_step", &[0, 1, 2, 3, 5, 6, 19]);
    /// `sf_plus.wgsl`'s `plus_sums`.
    pub const PLUS_SUMS: Entry = Entry::new("sf_plus", "plus_sums", &[1, 3, 4, 7, 9, 20]);
    /// `sf_plus.wgsl`'s `plus_step`.
    pub const PLUS_STEP: Entry = Entry::new("sf_plus", "plus_step", &[0, 1, 2, 3, 4, 5, 6, 7, 19]);
    /// `nap.wgsl`'s `norms_w`.
    pub const NORMS_W: Entry = Entry::new("nap", "norms_w", &[1, 2, 9, 20]);
    /// `nap.wgsl`'s `norms_sf`.
    pub const NORMS_SF: Entry = Entry::new("nap", "norms_sf", &[0, 1, 2, 4, 9, 20]);
    /// `nap.wgsl`'s `norms_plus`.
    pub const NORMS_PLUS: Entry = Entry::new("nap", "norms_plus", &[1, 4, 7, 9, 20]);
    /// `nap.wgsl`'s `project_w`.
    pub const PROJECT_W: Entry = Entry::new("nap", "project_w", &[1, 2, 9, 10, 13]);
    /// `nap.wgsl`'s `project_sf`.
    pub const PROJECT_SF: Entry = Entry::new("nap", "project_sf", &[0, 1, 2, 4, 9, 10, 13]);
    /// `nap.wgsl`'s `project_plus`.
    pub const PROJECT_PLUS: Entry = Entry::new("nap", "project_plus", &[0, 1, 2, 4, 7, 9, 10, 13]);
    /// `mode.wgsl`'s `to_eval`.
    pub const TO_EVAL: Entry = Entry::new("mode", "to_eval", &[0, 1, 2, 4]);
    /// `mode.wgsl`'s `to_train`.
    pub const TO_TRAIN: Entry = Entry::new("mode", "to_train", &[0, 1, 2, 4]);
    /// `mode.wgsl`'s `z_from_params` (bf16 state's start).
    pub const Z_FROM_PARAMS: Entry = Entry::new("mode", "z_from_params", &[1, 2, 4]);
    /// `mode.wgsl`'s `x_from_params` (bf16 state's start).
    pub const X_FROM_PARAMS: Entry = Entry::new("mode", "x_from_params", &[1, 2, 7]);
    /// `mode.wgsl`'s `params_from_x` (sf_plus's eval mode with bf16 state).
    pub const PARAMS_FROM_X: Entry = Entry::new("mode", "params_from_x", &[1, 2, 7]);
    /// `export.wgsl`'s `x_into`.
    pub const X_INTO: Entry = Entry::new("export", "x_into", &[0, 1, 2, 4, 18]);
    /// `export.wgsl`'s `x_copy_into` (sf_plus's x export with bf16 state).
    pub const X_COPY_INTO: Entry = Entry::new("export", "x_copy_into", &[1, 7, 18]);

    /// The same entry point in the file variant for bf16 state where `bf16`
    /// holds (the `_bf16` file; files that touch no state have one variant).
    pub fn with_state(self, bf16: bool) -> Entry {
        if !bf16 {
            return self;
        }
        let name = format!("{}{BF16_SUFFIX}", self.file);
        match FILES.iter().find(|(n, _)| *n == name) {
            Some((file, _)) => Entry { file, ..self },
            None => self,
        }
    }
}

/// Every built-in entry point with the bindings it uses. In the
/// optimizer files binding numbers mean the same everywhere (0 step, 1 segment,
/// 2 y, 3 g, 4 z, 5 v, 6 m, 7 x, 8 chunk partials, 9 pieces, 10 groups, 11 sf_plus
/// state, 12 loss, 13 group norms, 14-16 trace test, 17 chunk ids, 18 export
/// destination, 19 health flags, 20 invocation partials, 21 chunks); the layer files, the environments' (`shaders/rl.wgsl`), the agent's (`shaders/dqn.wgsl`) and `bench` number their own, listed at their top.
pub const ENTRIES: &[Entry] = &[
    Entry::SGD_SF_STEP,
    Entry::ADAM_SF_STEP,
    Entry::ADAM_SF_MOMENTUM_STEP,
    Entry::ADAMW_STEP,
    Entry::PLUS_SUMS,
    Entry::PLUS_STEP,
    Entry::new("polyak", "plus_reduce", &[8, 11]),
    Entry::new("polyak", "plus_scalars", &[0, 11, 12]),
    Entry::new("polyak", "plus_trace", &[0, 11, 14, 15, 16]),
    Entry::new("chunks", "chunk_sums", &[8, 20, 21]),
    Entry::NORMS_W,
    Entry::NORMS_SF,
    Entry::NORMS_PLUS,
    Entry::new("nap", "group_norms", &[0, 8, 10, 13, 17, 19]),
    Entry::new("nap", "init_rho", &[10, 13]),
    Entry::PROJECT_W,
    Entry::PROJECT_SF,
    Entry::PROJECT_PLUS,
    Entry::TO_EVAL,
    Entry::TO_TRAIN,
    Entry::Z_FROM_PARAMS,
    Entry::X_FROM_PARAMS,
    Entry::PARAMS_FROM_X,
    Entry::X_INTO,
    Entry::X_COPY_INTO,
    Entry::new("linear", "matmul", &[0, 1, 2, 4]),
    Entry::new("linear", "matmul_bias", &[0, 1, 2, 3, 4]),
    Entry::new("linear", "matmul_block", &[0, 1, 2, 4]),
    Entry::new("linear", "matmul_block_bias", &[0, 1, 2, 3, 4]),
    Entry::new("linear", "column_sums", &[0, 5, 6]),
    Entry::new("linear_subgroup", "matmul_subgroup", &[0, 1, 2, 4]),
    Entry::new("linear_subgroup", "matmul_subgroup_bias", &[0, 1, 2, 3, 4]),
    Entry::new("norm", "norm_forward", &[0, 1, 2, 3, 4, 5, 6]),
    Entry::new("norm", "norm_forward_rows", &[0, 1, 2, 3, 4, 5, 6]),
    Entry::new("norm", "norm_backward_input", &[0, 1, 2, 5, 6, 7, 8]),
    Entry::new("norm", "norm_backward_input_rows", &[0, 1, 2, 5, 6, 7, 8]),
    Entry::new("norm", "norm_backward_params", &[0, 1, 5, 6, 7, 9, 10]),
    Entry::new("activation", "relu_forward", &[0, 1, 2]),
    Entry::new("activation", "relu_backward", &[0, 1, 3, 4]),
    Entry::new("activation", "gelu_forward", &[0, 1, 2]),
    Entry::new("activation", "gelu_backward", &[0, 1, 3, 4]),
    Entry::new("loss", "loss_rows", &[0, 1, 2, 3, 4, 5]),
    Entry::new("loss", "loss_rows_short", &[0, 1, 2, 3, 4, 5]),
    Entry::new("loss", "loss_mean", &[0, 3, 5, 6]),
    Entry::new("loss", "loss_backward", &[0, 1, 2, 4, 7]),
    Entry::new("embedding", "embedding_forward", &[0, 1, 2, 3]),
    Entry::new("embedding", "embedding_clear", &[0, 5]),
    Entry::new("embedding", "embedding_link", &[0, 1, 5, 6]),
    Entry::new("embedding", "embedding_backward", &[0, 4, 5, 6, 7]),
    Entry::new("attention", "attention_probs", &[0, 1, 2]),
    Entry::new("attention", "attention_values", &[0, 1, 2, 3]),
    Entry::new("attention", "attention_dscores", &[0, 1, 2, 4, 5]),
    Entry::new("attention", "attention_dqkv", &[0, 1, 2, 4, 5, 6]),
    Entry::new("attention", "attention_scores_block", &[0, 1, 2]),
    Entry::new("attention", "attention_softmax_rows", &[0, 2]),
    Entry::new("attention", "attention_values_block", &[0, 1, 2, 3]),
    Entry::new("attention", "attention_dp_block", &[0, 1, 4, 5]),
    Entry::new("attention", "attention_dsoftmax_rows", &[0, 2, 5]),
    Entry::new("attention", "attention_dqkv_block", &[0, 1, 2, 4, 5, 6]),
    Entry::new("residual", "add", &[0, 1, 2, 3]),
    Entry::new("cartpole", "env_reset", &[0, 1, 2, 4]),
    Entry::new("cartpole", "env_step", &[0, 1, 2, 3, 4, 5, 6, 7]),
    Entry::new("acrobot", "env_reset", &[0, 1, 2, 4]),
    Entry::new("acrobot", "env_step", &[0, 1, 2, 3, 4, 5, 6, 7]),
    Entry::new("dqn", "observe", &[0, 1, 2, 3, 4]),
    Entry::new("dqn", "act", &[0, 1, 5, 6]),
    Entry::new("dqn", "store", &[0, 1, 2, 3, 4, 6, 7, 8, 9]),
    Entry::new("dqn", "episodes", &[0, 1, 7, 8, 18, 19]),
    Entry::new("dqn", "sample", &[0, 1, 9, 10, 11, 12]),
    Entry::new("dqn", "td_rows", &[0, 5, 12, 13, 14, 15, 16]),
    Entry::new("dqn", "td_mean", &[0, 1, 16, 17]),
    Entry::new("bench", "copy_vec4", &[0, 1]),
];

/// The full source of built-in kernel file `name` (prelude included).
pub fn source(name: &str) -> Option<String> {
    FILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, body)| format!("{COMMON}\n{body}"))
}

/// A file of WGSL compute kernels and the bindings (of group 0) each of its
/// entry points uses, registered with [`Gpu::register_kernels`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelFile {
    /// The name dispatches refer to it by; must not be a built-in file's.
    pub name: String,
    /// The complete WGSL source.
    pub source: String,
    /// (entry point, the binding numbers it uses).
    pub entries: Vec<(String, Vec<u32>)>,
}

impl KernelFile {
    /// A file named `name` with WGSL `source` and no entry points yet.
    pub fn new(name: impl Into<String>, source: impl Into<String>) -> Self {
        KernelFile {
            name: name.into(),
            source: source.into(),
            entries: Vec::new(),
        }
    }

    /// The same, with sfnap's prelude in front (the `Step` and `Seg` structs of
    /// `shaders/common.wgsl` and the workgroup reduction of `shaders/reduce.wgsl`).
    pub fn with_prelude(name: impl Into<String>, source: &str) -> Self {
        Self::new(name, format!("{COMMON}\n{source}"))
    }

    /// Adds entry point `entry`, which uses `bindings` of group 0 (builder style).
    pub fn entry(mut self, entry: impl Into<String>, bindings: &[u32]) -> Self {
        self.entries.push((entry.into(), bindings.to_vec()));
        self
    }
}

/// What a [`Gpu`] has compiled, and the files registered on it.
#[derive(Default)]
pub(crate) struct Cache {
    files: HashMap<String, KernelFile>,
    modules: HashMap<String, wgpu::ShaderModule>,
    pipelines: HashMap<(String, String), wgpu::ComputePipeline>,
}

/// The per-device kernel cache (inside [`Gpu`]).
#[derive(Default)]
pub(crate) struct Kernels(Mutex<Cache>);

/// The bindings entry `entry` of a built-in file uses.
fn builtin_bindings(file: &str, entry: &str) -> Option<&'static [u32]> {
    let file = file.strip_suffix(BF16_SUFFIX).unwrap_or(file);
    ENTRIES
        .iter()
        .find(|e| e.file == file && e.name == entry)
        .map(|e| e.bindings)
}

impl Gpu {
    /// Registers `file` on this device, so that [`Gpu::pipeline`] and
    /// [`Gpu::dispatch`] can use its entry points (compiled on first use, once).
    /// Natively the file is compiled now and a WGSL error is returned, naming the
    /// file; registering the same file twice is allowed, another file under a used
    /// name is not.
    pub fn register_kernels(&self, file: KernelFile) -> Result<()> {
        let field = format!("kernels.{}", file.name);
        if source(&file.name).is_some() {
            return Err(Error::invalid(field, "is the name of one of sfnap's own kernel files"));
        }
        if file.entries.is_empty() {
            return Err(Error::invalid(field, "lists no entry point"));
        }
        match self.cache().files.get(&file.name) {
            Some(old) if *old == file => return Ok(()),
            Some(_) => return Err(Error::invalid(field, "another file is registered under this name")),
            None => {}
        }
        let module = self.compile(&file.name, &file.source)?;
        let mut cache = self.cache();
        cache.modules.insert(file.name.clone(), module);
        cache.files.insert(file.name.clone(), file);
        Ok(())
    }

    /// The cache, locked.
    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.kernels.0.lock().expect("kernel cache lock")
    }

    /// Runs `make` (a shader module or pipeline creation); natively a validation
    /// error it raises comes back as an error on `field`, saying `what` failed.
    #[cfg_attr(target_arch = "wasm32", allow(unused_variables))]
    fn validated<T>(&self, field: String, what: &str, make: impl FnOnce() -> T) -> Result<T> {
        #[cfg(not(target_arch = "wasm32"))]
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let made = make();
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::invalid(field, format!("{what}: {e}")));
        }
        Ok(made)
    }

    /// Compiles `source`; natively a WGSL error comes back as an error naming `name`.
    fn compile(&self, name: &str, source: &str) -> Result<wgpu::ShaderModule> {
        self.validated(format!("kernels.{name}"), "does not compile", || {
            self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            })
        })
    }

    /// The bindings entry point `entry` of kernel file `file` uses.
    pub fn kernel_bindings(&self, file: &str, entry: &str) -> Result<Vec<u32>> {
        if let Some(b) = builtin_bindings(file, entry) {
            return Ok(b.to_vec());
        }
        let cache = self.cache();
        let Some(f) = cache.files.get(file) else {
            return Err(Error::invalid(
                format!("kernels.{file}"),
                "no such kernel file: register it with Gpu::register_kernels",
            ));
        };
        f.entries
            .iter()
            .find(|(e, _)| e == entry)
            .map(|(_, b)| b.clone())
            .ok_or_else(|| {
                Error::invalid(
                    format!("kernels.{file}.{entry}"),
                    "no such entry point in the file's list",
                )
            })
    }

    /// The compute pipeline of entry point `entry` in kernel file `file` (built-in
    /// or registered), compiled on first use and kept for the device's lifetime.
    pub fn pipeline(&self, file: &str, entry: &str) -> Result<wgpu::ComputePipeline> {
        self.kernel_bindings(file, entry)?;
        let key = (file.to_string(), entry.to_string());
        if let Some(p) = self.cache().pipelines.get(&key) {
            return Ok(p.clone());
        }
        let cached = self.cache().modules.get(file).cloned();
        let module = match cached {
            Some(m) => m,
            None => {
                let src = source(file).expect("registered files are compiled at registration");
                let m = self.compile(file, &src)?;
                self.cache().modules.insert(file.to_string(), m.clone());
                m
            }
        };
        let pipeline = self.validated(format!("kernels.{file}.{entry}"), "no pipeline", || {
            self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        })?;
        self.cache().pipelines.insert(key, pipeline.clone());
        Ok(pipeline)
    }
}
