//! One wgpu device for Burn and sfnap ([`SharedDevice`]), opened by either side.

use std::sync::Arc;

use burn::tensor::wgpu::{wgpu, WgpuOptions, WgpuSetup};
use burn::tensor::Device;
use sfnap::error::{Error, Result};
use sfnap::gpu::{context, BackendChoice, Gpu};

/// A wgpu device registered with Burn's runtime and wrapped by sfnap: Burn's
/// kernels and sfnap's optimizer step run on one queue, and tensors reach the
/// optimizer without a copy through the host.
///
/// Register each device once and clone the `SharedDevice` (clones share it).
#[derive(Clone)]
pub struct SharedDevice {
    burn: Device,
    gpu: Arc<Gpu>,
}

impl SharedDevice {
    /// sfnap picks the adapter for `choice` (see
    /// [`sfnap::gpu::context::pick_adapter`]) and opens it as Burn would: with
    /// every feature the adapter has (Burn's kernels use each type the adapter
    /// offers: 64-bit integers, f16) and all of its limits; then registers the
    /// device with Burn.
    pub fn open(choice: BackendChoice) -> Result<SharedDevice> {
        let instance = context::instance();
        let adapter = context::pick_adapter_in(&instance, choice)?;
        let info = adapter.get_info();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("sfnap and Burn"),
            required_features: adapter.features()
                - wgpu::Features::MAPPABLE_PRIMARY_BUFFERS
                - wgpu::Features::all_experimental_mask(),
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .map_err(|e| Error::Gpu(format!("could not open {}: {e}", info.name)))?;
        Self::from_setup(WgpuSetup {
            instance,
            backend: info.backend,
            adapter,
            device,
            queue,
        })
    }

    /// [`SharedDevice::open`] on the backend `SFNAP_BACKEND` names (default `auto`).
    pub fn from_env() -> Result<SharedDevice> {
        Self::open(BackendChoice::from_env()?)
    }

    /// A device the program opened itself with plain wgpu (`setup`): registered
    /// with Burn and adopted by sfnap ([`Gpu::from_device`], which names what
    /// the device lacks for sfnap's kernels). Open it with the adapter's
    /// features and limits, as [`SharedDevice::open`] does: Burn's kernels use
    /// each type the adapter offers.
    pub fn from_setup(setup: WgpuSetup) -> Result<SharedDevice> {
        let gpu = Gpu::from_device(setup.device.clone(), setup.queue.clone())?;
        let burn = Device::wgpu_options()
            .setup(setup)
            .init()
            .map_err(|e| Error::Gpu(format!("Burn could not register the device: {e}")))?;
        Ok(SharedDevice {
            burn,
            gpu: Arc::new(gpu),
        })
    }

    /// Burn opens the device with `options` (its adapter choice,
    /// `Device::wgpu_options()`), and sfnap adopts it.
    pub fn from_burn(options: WgpuOptions) -> Result<SharedDevice> {
        let (burn, setup) = options
            .init_with_setup()
            .map_err(|e| Error::Gpu(format!("Burn could not open a wgpu device: {e}")))?;
        let gpu = Gpu::from_device(setup.device, setup.queue)?;
        Ok(SharedDevice {
            burn,
            gpu: Arc::new(gpu),
        })
    }

    /// The device for Burn's tensors and modules (without autodiff: call
    /// `.autodiff()` on it for a module to train).
    pub fn burn(&self) -> &Device {
        &self.burn
    }

    /// sfnap's view of the device.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }
}
