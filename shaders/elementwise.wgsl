// The element loop and the Schedule-Free interpolation, in front of the element
// passes (gpu::kernels). Functions and constants only: no bindings.

// The element loop: for (var i = elem_first(lid, wid); i < n; i = elem_next(i, nwg)).
// Workgroup w updates tiles of WG * ELEM_RUN vec4s: tile w, w + nwg, ...
// Within a tile each group of 8 invocations owns 8 * ELEM_RUN consecutive vec4s
// and sweeps them 8 at a time: one whole 128-byte line per buffer per trip, as
// a GPU likes. lavapipe runs 8 invocations at a time through their whole loop,
// so it streams each buffer front to back; the plain grid-stride loop made it
// juggle one stream per loop trip per buffer and fall to a third of copy speed
// (BENCHMARKS.md, "levers").
const ELEM_RUN: u32 = 8u;

fn elem_first(lid: u32, wid: u32) -> u32 {
    return wid * WG * ELEM_RUN + (lid / 8u) * 8u * ELEM_RUN + lid % 8u;
}

fn elem_next(i: u32, nwg: u32) -> u32 {
    let run_done = (i / 8u) % ELEM_RUN == ELEM_RUN - 1u;
    return select(i + 8u, i + nwg * WG * ELEM_RUN - 8u * (ELEM_RUN - 1u), run_done);
}

// The interpolation of the Schedule-Free kinds, y = beta x + (1 - beta) z (beta
// is Step.beta), and its inverse.
fn y_of(x: vec4<f32>, z: vec4<f32>, beta: f32) -> vec4<f32> {
    return beta * x + (1.0 - beta) * z;
}

fn x_of(y: vec4<f32>, z: vec4<f32>, beta: f32) -> vec4<f32> {
    return (y - (1.0 - beta) * z) / beta;
}
