// The middle pass of the chunk reductions (src/optim/chunks.rs): one invocation
// per chunk adds the partials its pieces' invocations wrote, in a fixed order,
// into the chunk's partial. Each piece's 8 partials are added pairwise and the
// pieces into four running sums, so a chunk's sum is about as deep as a tree.

@group(0) @binding(8) var<storage, read_write> partials: array<vec2<f32>>;
@group(0) @binding(20) var<storage, read> lanes: array<vec2<f32>>;
@group(0) @binding(21) var<storage, read> chunks: array<vec2<u32>>; // (first piece slot, pieces)

@compute @workgroup_size(64)
fn chunk_sums(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x >= arrayLength(&chunks) {
        return;
    }
    let ch = chunks[gid.x];
    var acc = array<vec2<f32>, 4>();
    for (var k = 0u; k < ch.y; k++) {
        let b = (ch.x + k) * 8u;
        let s = ((lanes[b] + lanes[b + 1u]) + (lanes[b + 2u] + lanes[b + 3u]))
            + ((lanes[b + 4u] + lanes[b + 5u]) + (lanes[b + 6u] + lanes[b + 7u]));
        acc[k % 4u] += s;
    }
    partials[gid.x] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
}
