//! Parameters in the caller's buffers ([`ForeignOptimizer`]): a step on foreign
//! ranges equals the step on sfnap's own arena bit for bit (the same kernels run
//! on the same values; the copies move bytes), for adamw_sf, sf_plus, adamw_sf
//! with NaP and bf16 state, on ragged tensors at unaligned offsets that leave the
//! bytes between them alone, in other buffers at other offsets from step to step;
//! x exported into caller ranges and read back; and every refused range named,
//! before anything is recorded.

mod common;

use common::{gpu, Rng};
use sfnap::arena::{Arena, TensorSpec};
use sfnap::foreign::{BufferRange, ForeignOptimizer, ForeignTensor};
use sfnap::gpu::Gpu;
use sfnap::nap::{NapConfig, NapGroup};
use sfnap::optim::bf16::StateDtype;
use sfnap::optim::{GpuOptimizer, Kind, OptimConfig};

/// Ragged tensors: one past a chunk, odd lengths, no decay on two.
fn specs() -> Vec<TensorSpec> {
    vec![
        TensorSpec::new("w1", &[13, 7]),
        TensorSpec::new("b1", &[7]).no_decay(),
        TensorSpec::new("w2", &[4097]),
        TensorSpec::new("g", &[5]).no_decay(),
    ]
}

fn nap() -> NapConfig {
    NapConfig {
        groups: vec![
            NapGroup {
                tensors: vec!["w1".into(), "g".into()],
                rho: None,
            },
            NapGroup {
                tensors: vec!["w2".into()],
                rho: None,
            },
        ],
    }
}

/// What the gaps between the caller's tensors hold; a step must leave them so.
const GAP: f32 = 7.25;

/// Buffers as another framework would hold them: all parameters in one buffer,
/// all gradients in another, each tensor at a 4-byte-aligned offset that is not
/// a multiple of 16 (nor of 256), with gaps between them.
struct Caller {
    params: wgpu::Buffer,
    grads: wgpu::Buffer,
    x: wgpu::Buffer,
    /// Byte offset of each tensor, the same in all three buffers.
    offsets: Vec<u64>,
    lens: Vec<usize>,
}

impl Caller {
    /// The first tensor at byte `first`.
    fn new(gpu: &Gpu, specs: &[TensorSpec], first: u64) -> Caller {
        let lens: Vec<usize> = specs.iter().map(|s| s.shape.iter().product()).collect();
        let mut offsets = Vec::new();
        let mut at = first;
        for (i, &n) in lens.iter().enumerate() {
            offsets.push(at);
            at += 4 * n as u64 + 4 * (i as u64 + 1);
        }
        let buffer = |label| {
            let b = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: at,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            gpu.queue
                .write_buffer(&b, 0, bytemuck::cast_slice(&vec![GAP; at as usize / 4]));
            b
        };
        Caller {
            params: buffer("caller params"),
            grads: buffer("caller grads"),
            x: buffer("caller x"),
            offsets,
            lens,
        }
    }

    fn range<'a>(&self, buffer: &'a wgpu::Buffer, i: usize) -> BufferRange<'a> {
        BufferRange::new(buffer, self.offsets[i], self.lens[i])
    }

    fn tensors(&self) -> Vec<ForeignTensor<'_>> {
        (0..self.lens.len())
            .map(|i| ForeignTensor {
                param: self.range(&self.params, i),
                grad: self.range(&self.grads, i),
            })
            .collect()
    }

    fn write(&self, gpu: &Gpu, buffer: &wgpu::Buffer, i: usize, values: &[f32]) {
        gpu.queue
            .write_buffer(buffer, self.offsets[i], bytemuck::cast_slice(values));
    }

    /// The whole buffer, gaps included.
    fn all(&self, gpu: &Gpu, buffer: &wgpu::Buffer) -> Vec<f32> {
        gpu.read(buffer, 0, buffer.size() as usize / 4).unwrap()
    }

    fn tensor(&self, whole: &[f32], i: usize) -> Vec<f32> {
        let at = self.offsets[i] as usize / 4;
        whole[at..at + self.lens[i]].to_vec()
    }

    /// Every byte outside the tensors still holds [`GAP`].
    fn gaps_kept(&self, whole: &[f32]) -> bool {
        let mut inside = vec![false; whole.len()];
        for (i, &n) in self.lens.iter().enumerate() {
            let at = self.offsets[i] as usize / 4;
            inside[at..at + n].iter_mut().for_each(|v| *v = true);
        }
        whole.iter().zip(&inside).all(|(v, &t)| t || *v == GAP)
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// `steps` steps of `cfg` on sfnap's arena and on the caller's buffers from the
/// same values; y after every step, and x at the end, must agree bit for bit.
/// Odd steps take other buffers at other offsets (a framework's gradients move
/// from step to step): the step writes y wherever it is told.
fn same_as_arena(cfg: &OptimConfig, nap: Option<&NapConfig>, steps: usize) {
    let gpu = gpu();
    let specs = specs();
    let callers = [Caller::new(&gpu, &specs, 4), Caller::new(&gpu, &specs, 12)];
    let caller = &callers[0];
    let mut rng = Rng::new(11);
    let normals =
        |rng: &mut Rng, n: usize, s: f64| -> Vec<f32> { rng.normals(n, s).iter().map(|&v| v as f32).collect() };

    let arena = Arena::new(&gpu, &specs, None).unwrap();
    for (i, s) in specs.iter().enumerate() {
        let init = normals(&mut rng, caller.lens[i], 1.0);
        arena.write(&gpu, &s.name, &init).unwrap();
        caller.write(&gpu, &caller.params, i, &init);
    }
    let mut native = GpuOptimizer::new(&gpu, &arena, cfg, nap).unwrap();
    let params: Vec<BufferRange> = (0..specs.len()).map(|i| caller.range(&caller.params, i)).collect();
    let mut foreign = ForeignOptimizer::new(&gpu, &specs, &params, cfg, nap).unwrap();

    for step in 0..steps {
        let caller = &callers[step % 2];
        for (i, s) in specs.iter().enumerate() {
            let g = normals(&mut rng, caller.lens[i], 0.01 * 3f64.powi(i as i32));
            arena.write_grad(&gpu, &s.name, &g).unwrap();
            caller.write(&gpu, &caller.grads, i, &g);
        }
        if cfg.kind == Kind::SfPlus {
            let loss = 0.5 + rng.uniform() as f32;
            native.write_loss(&gpu, loss).unwrap();
            foreign.optimizer().write_loss(&gpu, loss).unwrap();
        }
        native.step(&gpu).unwrap();
        foreign.step(&gpu, &caller.tensors()).unwrap();
        let got = caller.all(&gpu, &caller.params);
        assert!(
            caller.gaps_kept(&got),
            "{}: step {step} wrote outside the tensors",
            cfg.kind
        );
        for (i, s) in specs.iter().enumerate() {
            let want = arena.read(&gpu, &s.name).unwrap();
            assert!(
                bits(&caller.tensor(&got, i)) == bits(&want),
                "{}: y of `{}` differs at step {step}",
                cfg.kind,
                s.name
            );
        }
    }
    native.check(&gpu).unwrap();
    foreign.optimizer().check(&gpu).unwrap();
    assert_eq!(foreign.optimizer().steps(), steps as u64);

    // x: exported on the arena, into the caller's ranges, and read back.
    let caller = &callers[(steps - 1) % 2];
    let x_native = gpu.storage("x", arena.layout.bytes());
    let export = native.x_export(&gpu, &arena, &x_native).unwrap();
    gpu.submit(|enc| export.record(enc));
    let dst: Vec<BufferRange> = (0..specs.len()).map(|i| caller.range(&caller.x, i)).collect();
    gpu.submit(|enc| foreign.record_x_into(&gpu, enc, &dst)).unwrap();
    let got = caller.all(&gpu, &caller.x);
    assert!(caller.gaps_kept(&got), "{}: x written outside the tensors", cfg.kind);
    for (i, s) in specs.iter().enumerate() {
        let want = bits(&arena.read_from(&gpu, &x_native, &s.name).unwrap());
        assert!(
            bits(&caller.tensor(&got, i)) == want,
            "{}: x of `{}` differs",
            cfg.kind,
            s.name
        );
        assert!(
            bits(&foreign.read_x(&gpu, &s.name).unwrap()) == want,
            "{}: read_x",
            cfg.kind
        );
    }
    // Exporting x left y alone.
    let y = caller.all(&gpu, &caller.params);
    for (i, s) in specs.iter().enumerate() {
        assert!(bits(&caller.tensor(&y, i)) == bits(&arena.read(&gpu, &s.name).unwrap()));
    }
    if nap.is_some() {
        let (a, b) = (
            native.nap_report(&gpu).unwrap(),
            foreign.optimizer().nap_report(&gpu).unwrap(),
        );
        assert_eq!(a, b, "{}: NaP reports differ", cfg.kind);
    }
}

#[test]
fn adamw_sf_on_foreign_buffers_equals_the_arena_step() {
    same_as_arena(&OptimConfig::new(Kind::AdamwSf).with_lr(0.01), None, 4);
}

#[test]
fn sf_plus_on_foreign_buffers_equals_the_arena_step() {
    same_as_arena(&OptimConfig::new(Kind::SfPlus), None, 4);
}

#[test]
fn adamw_sf_with_nap_on_foreign_buffers_equals_the_arena_step() {
    same_as_arena(&OptimConfig::new(Kind::AdamwSf).with_lr(0.01), Some(&nap()), 4);
}

#[test]
fn bf16_state_on_foreign_buffers_equals_the_arena_step() {
    let mut cfg = OptimConfig::new(Kind::AdamwSf).with_lr(0.01);
    cfg.state_dtype = StateDtype::Bf16;
    same_as_arena(&cfg, Some(&nap()), 4);
}

/// A two-tensor optimizer over `caller`'s buffers, for the refusals.
fn two(gpu: &Gpu) -> (Caller, ForeignOptimizer) {
    let specs = [TensorSpec::new("a", &[10]), TensorSpec::new("b", &[6])];
    let caller = Caller::new(gpu, &specs, 4);
    let params: Vec<BufferRange> = (0..2).map(|i| caller.range(&caller.params, i)).collect();
    let opt = ForeignOptimizer::new(gpu, &specs, &params, &OptimConfig::new(Kind::AdamwSf), None).unwrap();
    (caller, opt)
}

/// A step on `tensors` is refused with a message containing every one of `says`,
/// and records nothing.
fn refused(gpu: &Gpu, opt: &mut ForeignOptimizer, tensors: &[ForeignTensor], says: &[&str]) {
    let err = opt.step(gpu, tensors).expect_err("refused").to_string();
    for s in says {
        assert!(err.contains(s), "`{err}` does not say `{s}`");
    }
    assert_eq!(opt.optimizer().steps(), 0, "a refused step was recorded: {err}");
}

#[test]
fn each_bad_range_is_refused_by_name() {
    let gpu = gpu();
    let (caller, mut opt) = two(&gpu);
    let good = caller.tensors();
    let size = caller.params.size();

    let mut t = good.clone();
    t[1].param.offset = size - 8;
    refused(
        &gpu,
        &mut opt,
        &t,
        &["tensors[1] `b`.param", "outside its buffer", &format!("{size} bytes")],
    );

    let mut t = good.clone();
    t[0].grad.offset = 6;
    refused(
        &gpu,
        &mut opt,
        &t,
        &["tensors[0] `a`.grad", "offset 6 is not a multiple of 4"],
    );

    let mut t = good.clone();
    t[1].param.offset = t[0].param.offset + 8;
    refused(&gpu, &mut opt, &t, &["`b`.param", "overlap tensors[0] `a`.param"]);

    let mut t = good.clone();
    t[1].grad = BufferRange::new(&caller.params, t[0].param.offset + 36, 6);
    refused(&gpu, &mut opt, &t, &["`b`.grad", "overlap tensors[0] `a`.param"]);

    let mut t = good.clone();
    t[0].grad.len = 9;
    refused(
        &gpu,
        &mut opt,
        &t,
        &["tensors[0] `a`", "param has 10 elements but its grad 9"],
    );

    let mut t = good.clone();
    t[0].param.len = 9;
    t[0].grad.len = 9;
    refused(
        &gpu,
        &mut opt,
        &t,
        &["tensors[0] `a`.param", "has 9 elements, but the tensor has 10"],
    );

    refused(&gpu, &mut opt, &good[..1], &["tensors: 1 given for 2 tensors"]);

    // Usages: a gradient sfnap cannot copy from, a parameter it cannot copy into.
    let usage = |u| {
        gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("limited"),
            size: 64,
            usage: u,
            mapped_at_creation: false,
        })
    };
    let no_src = usage(wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST);
    let mut t = good.clone();
    t[1].grad = BufferRange::new(&no_src, 0, 6);
    refused(&gpu, &mut opt, &t, &["tensors[1] `b`.grad", "lacks the usage COPY_SRC"]);
    let no_dst = usage(wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC);
    let mut t = good.clone();
    t[0].param = BufferRange::new(&no_dst, 0, 10);
    refused(
        &gpu,
        &mut opt,
        &t,
        &["tensors[0] `a`.param", "lacks the usage COPY_DST"],
    );

    // x ranges are checked the same way.
    let dst = [caller.range(&caller.x, 0), BufferRange::new(&caller.x, 2, 6)];
    let err = gpu
        .submit(|enc| opt.record_x_into(&gpu, enc, &dst))
        .expect_err("refused")
        .to_string();
    assert!(err.contains("tensors[1] `b`.x") && err.contains("offset 2"), "{err}");

    // The good ranges still step.
    opt.step(&gpu, &good).unwrap();
    assert_eq!(opt.optimizer().steps(), 1);
}

#[test]
fn initial_parameters_are_checked_too() {
    let gpu = gpu();
    let specs = [TensorSpec::new("a", &[10]), TensorSpec::new("b", &[6])];
    let caller = Caller::new(&gpu, &specs, 4);
    let params = [caller.range(&caller.params, 0), BufferRange::new(&caller.params, 8, 6)];
    let err = ForeignOptimizer::new(&gpu, &specs, &params, &OptimConfig::new(Kind::AdamwSf), None)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("tensors[1] `b`.param") && err.contains("overlap"), "{err}");
}

/// A buffer of `device`, with the usages a step needs.
fn buffer_of(device: &wgpu::Device) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("another device's"),
        size: 64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

#[test]
fn a_buffer_of_another_device_is_refused_by_name() {
    // Two devices opened on one adapter, as a program opens them.
    let adapter = sfnap::gpu::context::pick_adapter(sfnap::gpu::BackendChoice::from_env().unwrap()).unwrap();
    let open = || pollster::block_on(adapter.request_device(&Default::default())).unwrap();
    let ((mine, queue), (other, _)) = (open(), open());
    let gpu = Gpu::from_device(mine, queue).unwrap();
    let (caller, mut opt) = two(&gpu);
    let theirs = buffer_of(&other);
    let mut t = caller.tensors();
    t[1].grad = BufferRange::new(&theirs, 0, 6);
    refused(&gpu, &mut opt, &t, &["tensors[1] `b`.grad", "another device"]);
    let mut t = caller.tensors();
    t[0].param = BufferRange::new(&theirs, 0, 10);
    refused(&gpu, &mut opt, &t, &["tensors[0] `a`.param", "another device"]);
    opt.step(&gpu, &caller.tensors()).unwrap();
}

/// A run saved after 3 steps and resumed by an optimizer that started from
/// other parameters (another draw of the same tensors) continues as the
/// uninterrupted run, bit for bit: the checkpoint carries y, the state and
/// NaP's rho (the norms its groups project to), so nothing of the new start
/// survives the resume. sf_plus with NaP and adamw_sf with NaP.
#[test]
fn resume_from_other_starting_values_continues_bit_for_bit() {
    let gpu = gpu();
    let specs = specs();
    let dir = common::empty_dir("foreign-resume");
    for cfg in [
        OptimConfig::new(Kind::SfPlus),
        OptimConfig::new(Kind::AdamwSf).with_lr(0.01),
    ] {
        let caller = Caller::new(&gpu, &specs, 4);
        let start = |seed: u64| {
            let mut rng = Rng::new(seed);
            for i in 0..specs.len() {
                let v: Vec<f32> = (0..caller.lens[i]).map(|_| rng.normal() as f32).collect();
                caller.write(&gpu, &caller.params, i, &v);
            }
        };
        let grads = |step: u64| {
            let mut rng = Rng::new(100 + step);
            for i in 0..specs.len() {
                let v: Vec<f32> = (0..caller.lens[i]).map(|_| rng.normal() as f32 * 0.1).collect();
                caller.write(&gpu, &caller.grads, i, &v);
            }
        };
        let initial: Vec<BufferRange> = (0..specs.len()).map(|i| caller.range(&caller.params, i)).collect();
        let run = |opt: &mut ForeignOptimizer, steps: std::ops::Range<u64>| {
            for s in steps {
                grads(s);
                if opt.optimizer().loss_buffer().is_some() {
                    opt.optimizer().write_loss(&gpu, 1.0 / (s + 1) as f32).unwrap();
                }
                opt.step(&gpu, &caller.tensors()).unwrap();
            }
        };
        start(1);
        let mut whole = ForeignOptimizer::new(&gpu, &specs, &initial, &cfg, Some(&nap())).unwrap();
        run(&mut whole, 0..6);
        let want = bits(&caller.all(&gpu, &caller.params));
        start(1);
        let mut first = ForeignOptimizer::new(&gpu, &specs, &initial, &cfg, Some(&nap())).unwrap();
        run(&mut first, 0..3);
        let path = dir.join(format!("{}.safetensors", cfg.kind.name()));
        let meta = sfnap::checkpoint::Meta {
            step: 3,
            config: String::new(),
            rng: 0,
        };
        first.save(&gpu, &path, &meta).unwrap();
        start(2);
        let mut resumed = ForeignOptimizer::new(&gpu, &specs, &initial, &cfg, Some(&nap())).unwrap();
        let loaded = sfnap::checkpoint::load(&path).unwrap();
        resumed.resume(&gpu, &path, loaded).unwrap();
        let y: Vec<BufferRange> = (0..specs.len()).map(|i| caller.range(&caller.params, i)).collect();
        gpu.submit(|enc| resumed.record_y_into(&gpu, enc, &y)).unwrap();
        run(&mut resumed, 3..6);
        assert_eq!(
            bits(&caller.all(&gpu, &caller.params)),
            want,
            "{}: y after the resumed steps",
            cfg.kind.name()
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
