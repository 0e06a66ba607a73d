// The optimizer race (`web/src/race/`): 2D test functions evaluated on the device,
// compiled after the engine's prelude (`shaders/common.wgsl`, `shaders/reduce.wgsl`).
// Every starting point is one 2-element tensor of an arena, `stride` floats apart,
// so one optimizer step updates them all; `race_grad` writes their gradients (and
// the summed loss sf_plus reads), `race_gather` packs y and x for one readback.
//
// Bindings (this file's own numbering): 0 info, 1 parameters y, 2 gradients,
// 3 loss F (sum over points), 4 loss history ring (mean over points, per step),
// 5 step counter, 6 the buffer x is derived from (z, sf_plus's x, or y), 7 packed output.

struct RaceInfo {
    n: u32,          // points
    stride: u32,     // floats from one point's tensor to the next
    func: u32,       // 0 Rosenbrock, 1 ill-conditioned quadratic, 2 noisy bowl, 3 Beale
    hist_len: u32,   // length of the history ring
    noise: f32,      // noisy bowl: standard deviation of the gradient noise
    xa: f32,         // x = xa * y + xb * other
    xb: f32,
    seed: u32,       // noise seed
}

@group(0) @binding(0) var<uniform> info: RaceInfo;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> history: array<f32>;
@group(0) @binding(5) var<storage, read_write> counter: array<u32>;
@group(0) @binding(6) var<storage, read> other: array<f32>;
@group(0) @binding(7) var<storage, read_write> packed: array<vec4<f32>>;

const INV_SQRT2: f32 = 0.70710678;
// Condition number of the quadratic.
const KAPPA: f32 = 50.0;
const TAU: f32 = 6.28318531;

// (f, df/dx, df/dy) of test function `func` at p.
fn value_and_grad(func: u32, p: vec2<f32>) -> vec3<f32> {
    let a = p.x;
    let b = p.y;
    switch func {
        case 0u: {
            // Rosenbrock: (1 - a)^2 + 100 (b - a^2)^2, minimum 0 at (1, 1).
            let r = b - a * a;
            return vec3(
                (1.0 - a) * (1.0 - a) + 100.0 * r * r,
                -2.0 * (1.0 - a) - 400.0 * a * r,
                200.0 * r,
            );
        }
        case 1u: {
            // 0.5 (u^2 + KAPPA w^2) in axes turned by 45 degrees: u = (a + b) / sqrt 2, w = (b - a) / sqrt 2.
            let u = (a + b) * INV_SQRT2;
            let w = (b - a) * INV_SQRT2;
            return vec3(
                0.5 * (u * u + KAPPA * w * w),
                (u - KAPPA * w) * INV_SQRT2,
                (u + KAPPA * w) * INV_SQRT2,
            );
        }
        case 2u: {
            // Bowl 0.5 |p|^2 (its gradient gets noise in race_grad).
            return vec3(0.5 * dot(p, p), a, b);
        }
        default: {
            // Beale, minimum 0 at (3, 0.5).
            let b2 = b * b;
            let b3 = b2 * b;
            let t1 = 1.5 - a + a * b;
            let t2 = 2.25 - a + a * b2;
            let t3 = 2.625 - a + a * b3;
            return vec3(
                t1 * t1 + t2 * t2 + t3 * t3,
                2.0 * (t1 * (b - 1.0) + t2 * (b2 - 1.0) + t3 * (b3 - 1.0)),
                2.0 * a * (t1 + 2.0 * t2 * b + 3.0 * t3 * b2),
            );
        }
    }
}

// PCG hash (the same integer function as `race::pcg` on the host).
fn pcg(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

// A uniform number in (0, 1) from 24 bits of a hash.
fn unit(h: u32) -> f32 {
    return (f32(h >> 8u) + 0.5) / 16777216.0;
}

// Two standard normal numbers for point i at step k (Box-Muller).
fn gauss2(seed: u32, k: u32, i: u32) -> vec2<f32> {
    let h = pcg(seed ^ pcg(k ^ pcg(i)));
    let u1 = unit(h);
    let u2 = unit(pcg(h));
    let r = sqrt(-2.0 * log(u1));
    return r * vec2(cos(TAU * u2), sin(TAU * u2));
}

// One workgroup: gradients of every point, then the sum of their losses (a fixed-order
// tree, so bit-identical run after run) into `loss` and the mean into the history.
@compute @workgroup_size(256)
fn race_grad(@builtin(local_invocation_index) lid: u32) {
    let k = counter[0];
    var sum = 0.0;
    for (var i = lid; i < info.n; i += WG) {
        let o = i * info.stride;
        let fg = value_and_grad(info.func, vec2(y[o], y[o + 1u]));
        var g = fg.yz;
        if info.func == 2u {
            g += info.noise * gauss2(info.seed, k, i);
        }
        grads[o] = g.x;
        grads[o + 1u] = g.y;
        sum += fg.x;
    }
    let total = workgroup_sum(lid, vec2(sum, 0.0)).x;
    storageBarrier();
    if lid == 0u {
        loss[0] = total;
        history[k % info.hist_len] = total / f32(info.n);
        counter[0] = k + 1u;
    }
}

// Packs (y, x) of every point into one vec4 each.
@compute @workgroup_size(64)
fn race_gather(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i < info.n {
        let o = i * info.stride;
        let yp = vec2(y[o], y[o + 1u]);
        let op = vec2(other[o], other[o + 1u]);
        packed[i] = vec4(yp, info.xa * yp + info.xb * op);
    }
}
