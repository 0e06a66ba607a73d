//! Adapter choice and device creation: the one place that opens a GPU, and
//! [`Gpu::from_device`] for a program that opened its own.

use crate::error::{Error, Result};

/// Which wgpu backend to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum BackendChoice {
    /// The best adapter present (discrete > integrated > virtual > CPU; native APIs before GL).
    #[default]
    Auto,
    /// Vulkan (lavapipe on machines without a GPU).
    #[cfg_attr(feature = "cli", value(alias = "vk"))]
    Vulkan,
    /// Metal.
    Metal,
    /// Direct3D 12.
    #[cfg_attr(feature = "cli", value(alias = "d3d12"))]
    Dx12,
    /// OpenGL / GLES (EGL on Linux).
    #[cfg_attr(feature = "cli", value(aliases = ["gles", "opengl"]))]
    Gl,
}

impl BackendChoice {
    /// Parses `vulkan|metal|dx12|gl|auto`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Self::Auto),
            "vulkan" | "vk" => Ok(Self::Vulkan),
            "metal" => Ok(Self::Metal),
            "dx12" | "d3d12" => Ok(Self::Dx12),
            "gl" | "gles" | "opengl" => Ok(Self::Gl),
            other => Err(Error::invalid(
                "backend",
                format!("unknown backend `{other}` (expected vulkan, metal, dx12, gl or auto)"),
            )),
        }
    }

    /// The choice named by `SFNAP_BACKEND`, or `Auto` when it is unset.
    pub fn from_env() -> Result<Self> {
        match std::env::var("SFNAP_BACKEND") {
            Ok(s) => Self::parse(&s).map_err(|e| Error::invalid("SFNAP_BACKEND", e.to_string())),
            Err(_) => Ok(Self::Auto),
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn backends(self) -> wgpu::Backends {
        match self {
            Self::Auto => wgpu::Backends::all(),
            Self::Vulkan => wgpu::Backends::VULKAN,
            Self::Metal => wgpu::Backends::METAL,
            Self::Dx12 => wgpu::Backends::DX12,
            Self::Gl => wgpu::Backends::GL,
        }
    }
}

/// An opened device with what sfnap needs to know about it.
pub struct Gpu {
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// Name, backend, driver of the adapter.
    pub info: wgpu::AdapterInfo,
    /// The limits the device was opened with (the adapter's own).
    pub limits: wgpu::Limits,
    /// Whether GPU timestamps can be queried.
    pub timestamps: bool,
    /// Whether small matrix products share loads across subgroups
    /// (`shaders/linear_subgroup.wgsl`): the device was opened with
    /// `Features::SUBGROUP`, its subgroups hold at least 8 invocations, and it is
    /// not a browser's (whose WGSL would need `enable subgroups`). Layers built
    /// while it is false use the portable kernels, with the same results; set it
    /// to false before building them to keep to the portable ones.
    pub subgroup_matmul: bool,
    /// Compiled kernels and registered kernel files (each compiles once per device).
    pub(crate) kernels: crate::gpu::kernels::Kernels,
}

/// A wgpu instance over every backend, as sfnap opens adapters from (wgpu's
/// `WGPU_*` environment variables apply). A program sharing the device with
/// another library that needs the instance too picks its adapter here with
/// [`pick_adapter_in`].
pub fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = wgpu::Backends::all();
    wgpu::Instance::new(desc)
}

#[cfg(not(target_arch = "wasm32"))]
const INSTALL_HINT: &str = "no GPU adapter found. On a machine without a GPU install Mesa's CPU Vulkan driver \
(Debian/Ubuntu: `apt-get install mesa-vulkan-drivers`, or run `make setup`), then check `sfnap devices`";

#[cfg(not(target_arch = "wasm32"))]
fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let ty = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    (ty, backend)
}

/// Every adapter wgpu can see, best first (native only: browsers offer one adapter on request).
#[cfg(not(target_arch = "wasm32"))]
pub fn adapters() -> Vec<wgpu::Adapter> {
    adapters_in(&instance())
}

/// Every adapter of `instance`, best first.
#[cfg(not(target_arch = "wasm32"))]
fn adapters_in(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    let mut list = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    list.sort_by_key(|a| rank(&a.get_info()));
    list
}

/// Picks an adapter for `choice`, honouring wgpu's `WGPU_ADAPTER_NAME` (a case-insensitive substring).
#[cfg(not(target_arch = "wasm32"))]
pub fn pick_adapter(choice: BackendChoice) -> Result<wgpu::Adapter> {
    pick_adapter_in(&instance(), choice)
}

/// [`pick_adapter`] among the adapters of `instance` (made by [`instance`]).
#[cfg(not(target_arch = "wasm32"))]
pub fn pick_adapter_in(instance: &wgpu::Instance, choice: BackendChoice) -> Result<wgpu::Adapter> {
    let all = adapters_in(instance);
    if all.is_empty() {
        return Err(Error::NoAdapter(INSTALL_HINT.into()));
    }
    let name_filter = std::env::var("WGPU_ADAPTER_NAME").ok().map(|s| s.to_lowercase());
    let seen: Vec<String> = all
        .iter()
        .map(|a| {
            let i = a.get_info();
            format!("{} ({:?})", i.name, i.backend)
        })
        .collect();
    all.into_iter()
        .filter(|a| choice.backends().contains(a.get_info().backend.into()))
        .find(|a| {
            name_filter
                .as_ref()
                .is_none_or(|f| a.get_info().name.to_lowercase().contains(f))
        })
        .ok_or_else(|| {
            Error::NoAdapter(format!(
                "no adapter for backend {choice:?}{}; adapters present: {}",
                name_filter.map(|f| format!(" named like `{f}`")).unwrap_or_default(),
                seen.join(", ")
            ))
        })
}

/// Picks the adapter of one rank among several on a node (`local_rank`, from 0).
/// `SFNAP_ADAPTER` overrides: an index `i` of [`adapters`] (as `sfnap devices`
/// prints them), or a comma-separated list of them that local rank `r` takes
/// entry `r` of (modulo its length). Otherwise the ranks share out the adapters
/// of the best kind present for `choice` (the kind [`pick_adapter`] would take:
/// discrete GPUs first, native APIs before GL), rank `r` taking the
/// `r`-th modulo their number; more ranks than adapters share them.
#[cfg(not(target_arch = "wasm32"))]
pub fn pick_adapter_for_rank(choice: BackendChoice, local_rank: usize) -> Result<wgpu::Adapter> {
    if let Ok(list) = std::env::var("SFNAP_ADAPTER") {
        let all = adapters();
        let indices: Vec<&str> = list.split(',').map(str::trim).collect();
        let wanted = indices[local_rank % indices.len()];
        let i: usize = wanted.parse().map_err(|_| {
            Error::invalid(
                "SFNAP_ADAPTER",
                format!("`{list}` is not an adapter index or a comma-separated list of them (see `sfnap devices`)"),
            )
        })?;
        let n = all.len();
        return all.into_iter().nth(i).ok_or_else(|| {
            Error::invalid(
                "SFNAP_ADAPTER",
                format!("adapter [{i}] does not exist: {n} adapters present (see `sfnap devices`)"),
            )
        });
    }
    let best = pick_adapter(choice)?;
    let kind = rank(&best.get_info());
    let name_filter = std::env::var("WGPU_ADAPTER_NAME").ok().map(|s| s.to_lowercase());
    let mut same: Vec<wgpu::Adapter> = adapters()
        .into_iter()
        .filter(|a| {
            let info = a.get_info();
            choice.backends().contains(info.backend.into())
                && rank(&info) == kind
                && name_filter
                    .as_ref()
                    .is_none_or(|f| info.name.to_lowercase().contains(f))
        })
        .collect();
    if same.is_empty() {
        return Ok(best);
    }
    let at = local_rank % same.len();
    Ok(same.swap_remove(at))
}

impl Gpu {
    /// Opens the adapter chosen by `choice` (see [`pick_adapter`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(choice: BackendChoice) -> Result<Gpu> {
        pollster::block_on(Self::from_adapter(pick_adapter(choice)?))
    }

    /// Opens the adapter chosen by `SFNAP_BACKEND` (default `auto`).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_env() -> Result<Gpu> {
        Self::new(BackendChoice::from_env()?)
    }

    /// Opens the browser's WebGPU adapter (high-performance preference).
    #[cfg(target_arch = "wasm32")]
    pub async fn browser() -> Result<Gpu> {
        let adapter = instance()
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                Error::NoAdapter(format!(
                    "this browser offers no WebGPU adapter ({e}); WebGPU runs in Chrome, Edge and other Chromium \
                     browsers, Safari 26 and Firefox 141 or newer"
                ))
            })?;
        Self::from_adapter(adapter).await
    }

    /// Opens a device on `adapter` with all of its limits.
    pub async fn from_adapter(adapter: wgpu::Adapter) -> Result<Gpu> {
        let info = adapter.get_info();
        let limits = adapter.limits();
        let support = crate::gpu::support::check(
            &limits,
            &adapter.get_downlevel_capabilities(),
            adapter.features(),
            info.subgroup_min_size,
        );
        if let Some(missing) = &support[0].missing {
            return Err(Error::NoAdapter(format!(
                "{} ({:?}) cannot run sfnap's kernels: it lacks {missing}",
                info.name, info.backend
            )));
        }
        let required_features = adapter.features() & (wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SUBGROUP);
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("sfnap"),
                required_features,
                required_limits: limits,
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::Gpu(format!("could not open {}: {e}", info.name)))?;
        Self::from_device(device, queue)
    }

    /// Wraps a device the caller opened (with plain wgpu, sharing its buffers
    /// with sfnap). Checks the device's limits and features against what sfnap's
    /// kernels need and names what is missing; never opens a device of its own.
    /// Request the adapter's limits (`adapter.limits()`) when opening it: wgpu's
    /// defaults are enough for every kernel, but bind at most 128 MiB per storage
    /// binding, so larger arenas are cut into more segments.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Result<Gpu> {
        let info = device.adapter_info();
        let limits = device.limits();
        let features = device.features();
        if let Some(missing) = crate::gpu::support::check_device(&limits) {
            return Err(Error::NoAdapter(format!(
                "this device on {} ({:?}) cannot run sfnap's kernels: it lacks {missing}",
                info.name, info.backend
            )));
        }
        let subgroup_matmul = crate::gpu::support::subgroup_matmul_missing(features, info.subgroup_min_size).is_none();
        Ok(Gpu {
            device,
            queue,
            info,
            limits,
            timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            subgroup_matmul,
            kernels: Default::default(),
        })
    }

    /// One line naming the adapter: `name (backend, type)`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.info.name, self.info.backend, self.info.device_type
        )
    }

    /// Waits until all submitted work is done.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Gpu(format!("waiting for the device: {e}")))
    }
}
