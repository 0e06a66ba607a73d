//! The device the other way round: Burn opens it (`Device::wgpu_options()`, its
//! own adapter choice) and sfnap joins it (`SharedDevice::from_burn`). Steps on
//! it match the f64 reference as on a device sfnap opened (tests/steps.rs). A
//! binary of its own: Burn's default device is initialised once per process.

mod common;

use burn::tensor::Device;
use sfnap::optim::{Kind, OptimConfig};
use sfnap_burn::SharedDevice;

#[test]
fn burn_opens_the_device_and_sfnap_joins() {
    let dev = SharedDevice::from_burn(Device::wgpu_options()).expect("Burn opens a wgpu device");
    println!("Burn opened {}", dev.gpu().describe());
    let cfg = OptimConfig::new(Kind::AdamwSf).with_lr(0.01);
    common::against_reference(&dev, "adamw_sf", &cfg, None, 20);
    // Burn's default device is now taken: a second registration is refused by name.
    let again = SharedDevice::from_burn(Device::wgpu_options()).err().expect("refused");
    assert!(
        again.to_string().contains("Burn could not open a wgpu device"),
        "{again}"
    );
}
