// Workgroup tree reduction used by the two-pass reductions (sf_plus sums, NaP
// norms). Fixed order: the same inputs give bit-identical sums run after run.

var<workgroup> red: array<vec2<f32>, 256>;

// Every invocation of the workgroup must call this (it holds barriers); the
// total is returned to all of them.
fn workgroup_sum(lid: u32, value: vec2<f32>) -> vec2<f32> {
    red[lid] = value;
    workgroupBarrier();
    for (var off = WG / 2u; off > 0u; off = off / 2u) {
        if lid < off {
            red[lid] = red[lid] + red[lid + off];
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}
