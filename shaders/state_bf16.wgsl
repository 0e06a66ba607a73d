// The optimizer's state buffers (z, v, m, x) with bf16 state (docs/algorithms.md,
// "bf16 state"): two bf16 to a 32-bit word, the even element in the low half, so
// vec4 i of the arena is vec2<u32> i; an invocation owns whole words (a vec4), so
// no two write halves of one word. A segment's state is bound from an aligned
// offset: its vec4 i is word pair seg.state_base + i. Reads widen exactly; writes
// round to bf16, stochastically with the bits of hash32 (optim::bf16 on the host)
// or to nearest (s.rounding = 1). The portable subset: no shader-f16.

@group(0) @binding(4) var<storage, read_write> z: array<vec2<u32>>;
@group(0) @binding(5) var<storage, read_write> v: array<vec2<u32>>;
@group(0) @binding(6) var<storage, read_write> m: array<vec2<u32>>;
@group(0) @binding(7) var<storage, read_write> x: array<vec2<u32>>;

const NAP_STREAM: u32 = 8u;

// lowbias32 (Wellons): sfnap::optim::bf16::hash32.
fn hash32(a: u32) -> u32 {
    var h = a;
    h ^= h >> 16u;
    h *= 0x7feb352du;
    h ^= h >> 15u;
    h *= 0x846ca68bu;
    h ^= h >> 16u;
    return h;
}

fn widen4(w: vec2<u32>) -> vec4<f32> {
    return bitcast<vec4<f32>>(vec4<u32>(w.x << 16u, w.x & 0xffff0000u, w.y << 16u, w.y & 0xffff0000u));
}

// (bits + r) >> 16; NaN stays a quiet NaN (optim::bf16::round_bits).
fn bf16_bits(val: f32, r: u32, nearest: bool) -> u32 {
    let b = bitcast<u32>(val);
    if (b & 0x7fffffffu) > 0x7f800000u {
        return (b >> 16u) | 0x40u;
    }
    return (b + select(r, 0x7fffu + ((b >> 16u) & 1u), nearest)) >> 16u;
}

fn pack4(val: vec4<f32>, r: vec4<u32>, nearest: bool) -> vec2<u32> {
    return vec2<u32>(
        bf16_bits(val.x, r.x, nearest) | (bf16_bits(val.y, r.y, nearest) << 16u),
        bf16_bits(val.z, r.z, nearest) | (bf16_bits(val.w, r.w, nearest) << 16u),
    );
}

// The rounded vec4 i of the segment, written to stream `stream` (the binding, plus
// NAP_STREAM for NaP's projection): key = hash32(hash32(hash32(seed) ^ step) ^ stream),
// r = hash32(key ^ hash32(element)) & 0xffff, the element's offset in the arena.
fn round4(val: vec4<f32>, i: u32, stream: u32) -> vec2<u32> {
    let key = hash32(hash32(hash32(s.seed) ^ s.step) ^ stream);
    let e = 4u * (seg.first_vec4 + i);
    let r = vec4<u32>(
        hash32(key ^ hash32(e)),
        hash32(key ^ hash32(e + 1u)),
        hash32(key ^ hash32(e + 2u)),
        hash32(key ^ hash32(e + 3u)),
    ) & vec4<u32>(0xffffu);
    return pack4(val, r, s.rounding == 1u);
}

fn z_at(i: u32) -> vec4<f32> { return widen4(z[seg.state_base + i]); }
fn v_at(i: u32) -> vec4<f32> { return widen4(v[seg.state_base + i]); }
fn m_at(i: u32) -> vec4<f32> { return widen4(m[seg.state_base + i]); }
fn x_at(i: u32) -> vec4<f32> { return widen4(x[seg.state_base + i]); }
fn set_z(i: u32, val: vec4<f32>, stream: u32) { z[seg.state_base + i] = round4(val, i, 4u + stream); }
fn set_v(i: u32, val: vec4<f32>, stream: u32) { v[seg.state_base + i] = round4(val, i, 5u + stream); }
fn set_m(i: u32, val: vec4<f32>, stream: u32) { m[seg.state_base + i] = round4(val, i, 6u + stream); }
fn set_x(i: u32, val: vec4<f32>, stream: u32) { x[seg.state_base + i] = round4(val, i, 7u + stream); }
// Where the state starts at the parameters: rounded to nearest.
fn init_z(i: u32, val: vec4<f32>) { z[seg.state_base + i] = pack4(val, vec4<u32>(0u), true); }
fn init_x(i: u32, val: vec4<f32>) { x[seg.state_base + i] = pack4(val, vec4<u32>(0u), true); }
