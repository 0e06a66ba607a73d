//! sfnap embedded in a program that owns the device: `Gpu::from_device`, the
//! kernel cache shared by sfnap's kernels and the program's own, and the errors
//! a program gets for a device or a kernel file sfnap cannot use.

mod common;

use sfnap::arena::{Arena, TensorSpec};
use sfnap::gpu::buffers::whole;
use sfnap::gpu::{Gpu, KernelFile};
use sfnap::optim::{GpuOptimizer, Kind, OptimConfig};

/// A device opened with plain wgpu on the adapter the tests use, with `limits`.
fn device(limits: wgpu::Limits) -> (wgpu::Device, wgpu::Queue) {
    let adapter = sfnap::gpu::context::pick_adapter(sfnap::gpu::BackendChoice::from_env().unwrap()).unwrap();
    pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("a program's device"),
        required_limits: limits,
        ..Default::default()
    }))
    .expect("the adapter opens a device")
}

#[test]
fn a_device_with_default_limits_runs_the_optimizer_and_shares_its_buffers() {
    let (device, queue) = device(wgpu::Limits::default());
    let gpu = Gpu::from_device(device.clone(), queue.clone()).unwrap();
    let arena = Arena::new(&gpu, &[TensorSpec::new("w", &[10])], None).unwrap();
    arena.write(&gpu, "w", &[1.0; 10]).unwrap();
    let mut opt = GpuOptimizer::new(&gpu, &arena, &OptimConfig::new(Kind::SgdSf).with_lr(0.5), None).unwrap();
    // The program writes the gradient through its own queue into sfnap's buffer.
    queue.write_buffer(&arena.grads, 0, bytemuck::cast_slice(&[2.0f32; 10]));
    opt.step(&gpu).unwrap();
    // sgd_sf's first step (c = 1): y = z + lr (beta (1 - c) - 1) g = 1 - 0.5 * 2 = 0.
    let y = arena.read(&gpu, "w").unwrap();
    assert!(y.iter().all(|&v| v.abs() < 1e-6), "{y:?}");
}

#[test]
fn a_device_without_what_the_kernels_need_is_refused_by_name() {
    let (device, queue) = device(wgpu::Limits::downlevel_webgl2_defaults());
    let err = Gpu::from_device(device, queue).err().expect("refused").to_string();
    assert!(err.contains("cannot run sfnap's kernels"), "{err}");
    assert!(err.contains("storage buffers per stage"), "{err}");
}

#[test]
fn a_registered_kernel_runs_on_the_arena() {
    let gpu = common::gpu();
    let src = "@group(0) @binding(0) var<storage, read_write> g: array<f32>;
        @compute @workgroup_size(64) fn double(@builtin(global_invocation_id) id: vec3<u32>) {
            if (id.x < arrayLength(&g)) { g[id.x] = 2.0 * g[id.x]; }
        }";
    let file = KernelFile::new("doubling", src).entry("double", &[0]);
    gpu.register_kernels(file.clone()).unwrap();
    gpu.register_kernels(file).unwrap(); // the same file again: fine
    let arena = Arena::new(&gpu, &[TensorSpec::new("w", &[3])], None).unwrap();
    arena.write_grad(&gpu, "w", &[1.0, -2.0, 3.0]).unwrap();
    let d = gpu
        .dispatch("doubling", "double", &[(0, whole(&arena.grads))], [1, 1, 1])
        .unwrap();
    gpu.run(&[&d]);
    assert_eq!(arena.read_from(&gpu, &arena.grads, "w").unwrap(), [2.0, -4.0, 6.0]);
}

#[test]
fn bad_kernel_files_and_dispatches_are_named() {
    let gpu = common::gpu();
    let err = |r: sfnap::Result<()>| r.expect_err("refused").to_string();
    let bad = KernelFile::new("broken", "fn nope( {").entry("main", &[0]);
    let e = err(gpu.register_kernels(bad));
    assert!(e.starts_with("kernels.broken: does not compile"), "{e}");
    let clash = KernelFile::new("linear", "").entry("main", &[0]);
    assert!(err(gpu.register_kernels(clash)).contains("sfnap's own kernel files"));
    let other = KernelFile::new("doubling2", "@compute @workgroup_size(1) fn a() {}").entry("a", &[]);
    gpu.register_kernels(other).unwrap();
    let changed = KernelFile::new("doubling2", "@compute @workgroup_size(2) fn a() {}").entry("a", &[]);
    assert!(err(gpu.register_kernels(changed)).contains("another file is registered"));
    let e = gpu.dispatch("nowhere", "a", &[], [1, 1, 1]).err().unwrap().to_string();
    assert!(e.contains("no such kernel file"), "{e}");
    let arena = Arena::new(&gpu, &[TensorSpec::new("w", &[3])], None).unwrap();
    let e = gpu
        .dispatch("export", "x_into", &[(0, whole(&arena.params))], [1, 1, 1])
        .err()
        .unwrap()
        .to_string();
    assert!(e.starts_with("kernels.export.x_into: binding 1 was not given"), "{e}");
}
