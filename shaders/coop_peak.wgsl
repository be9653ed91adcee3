// The tensor cores' ceiling along this project's path to them (WGSL cooperative matrices,
// naga's SPIR-V, the driver's lowering of SPV_KHR_cooperative_matrix): how fast 16x16x16
// f16 x f16 -> f32 multiply-adds run when nothing else is in the way, for `autorep bench gemm
// --precision f16`. A workgroup is parts/coop_tile.wgsl's (four subgroups of 32), and each
// subgroup runs the narrow tile's inner step, 4 A fragments times 2 B fragments into 8
// accumulators, `p.iters` times, with its fragments
//   coop_peak_registers  loaded once, before the loop: the multiply-add rate alone;
//   coop_peak_shared     reloaded from workgroup memory at every step, as the tiles do;
//   coop_peak_global     reloaded from the storage buffer at every step (cached), as the
//                        GEMM's direct loads do.
// Set against the GEMM's rate, the three say how much of the gap to cuBLAS lies in the tile's
// staging and how much in the path itself.
//
// The operands: two identical copies of A (64x16: fragments of rows 16i..16i+15) and B (16x32:
// fragments of columns 16j..16j+15), row-major; the loop reads copy `i & p.mask` (mask = 1)
// so that the compiler cannot hoist a reload out of it. Every subgroup stores its 8
// accumulators, C_ij = iters · A_i·B_j (row-major 16x16 each), at
// dst[((workgroup · 4 + subgroup) · 8 + 2i + j) · 256], so no work is dead.

struct Params {
    iters: u32,
    mask: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<act>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

const PA: u32 = 1024u;        // halves of A
const PB: u32 = 512u;         // halves of B
const COPY: u32 = PA + PB;    // one copy of both

var<workgroup> WS: array<f16, 3072>;   // both copies (2 * COPY)
var<workgroup> WZ: array<f32, 256>;    // zeros: the accumulators' start

fn stage(lid: u32) {
    for (var i = lid; i < 2u * COPY; i += 128u) {
        WS[i] = src[i];
    }
    for (var i = lid; i < 256u; i += 128u) {
        WZ[i] = 0.0;
    }
    workgroupBarrier();
}

// Where accumulator t (= 2i + j) of this invocation's subgroup goes.
fn out(wid: u32, lid: u32, t: u32) -> u32 {
    return ((wid * 4u + lid / 32u) * 8u + t) * 256u;
}

@compute @workgroup_size(128)
fn coop_peak_registers(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    stage(lid);
    let z = coopLoadT<coop_mat16x16<f32, C>>(&WZ[0], 16u);
    var c00 = z; var c01 = z; var c10 = z; var c11 = z;
    var c20 = z; var c21 = z; var c30 = z; var c31 = z;
    let a0 = coopLoadT<coop_mat16x16<f16, A>>(&WS[0u], 16u);
    let a1 = coopLoadT<coop_mat16x16<f16, A>>(&WS[256u], 16u);
    let a2 = coopLoadT<coop_mat16x16<f16, A>>(&WS[512u], 16u);
    let a3 = coopLoadT<coop_mat16x16<f16, A>>(&WS[768u], 16u);
    let b0 = coopLoadT<coop_mat16x16<f16, B>>(&WS[PA], 32u);
    let b1 = coopLoadT<coop_mat16x16<f16, B>>(&WS[PA + 16u], 32u);
    for (var i = 0u; i < p.iters; i++) {
        c00 = coopMultiplyAdd(a0, b0, c00);
        c01 = coopMultiplyAdd(a0, b1, c01);
        c10 = coopMultiplyAdd(a1, b0, c10);
        c11 = coopMultiplyAdd(a1, b1, c11);
        c20 = coopMultiplyAdd(a2, b0, c20);
        c21 = coopMultiplyAdd(a2, b1, c21);
        c30 = coopMultiplyAdd(a3, b0, c30);
        c31 = coopMultiplyAdd(a3, b1, c31);
    }
    coopStoreT(c00, &dst[out(wid.x, lid, 0u)], 16u);
    coopStoreT(c01, &dst[out(wid.x, lid, 1u)], 16u);
    coopStoreT(c10, &dst[out(wid.x, lid, 2u)], 16u);
    coopStoreT(c11, &dst[out(wid.x, lid, 3u)], 16u);
    coopStoreT(c20, &dst[out(wid.x, lid, 4u)], 16u);
    coopStoreT(c21, &dst[out(wid.x, lid, 5u)], 16u);
    coopStoreT(c30, &dst[out(wid.x, lid, 6u)], 16u);
    coopStoreT(c31, &dst[out(wid.x, lid, 7u)], 16u);
}

@compute @workgroup_size(128)
fn coop_peak_shared(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    stage(lid);
    let z = coopLoadT<coop_mat16x16<f32, C>>(&WZ[0], 16u);
    var c00 = z; var c01 = z; var c10 = z; var c11 = z;
    var c20 = z; var c21 = z; var c30 = z; var c31 = z;
    for (var i = 0u; i < p.iters; i++) {
        let o = (i & p.mask) * COPY;
        let b0 = coopLoadT<coop_mat16x16<f16, B>>(&WS[o + PA], 32u);
        let b1 = coopLoadT<coop_mat16x16<f16, B>>(&WS[o + PA + 16u], 32u);
        let a0 = coopLoadT<coop_mat16x16<f16, A>>(&WS[o], 16u);
        c00 = coopMultiplyAdd(a0, b0, c00);
        c01 = coopMultiplyAdd(a0, b1, c01);
        let a1 = coopLoadT<coop_mat16x16<f16, A>>(&WS[o + 256u], 16u);
        c10 = coopMultiplyAdd(a1, b0, c10);
        c11 = coopMultiplyAdd(a1, b1, c11);
        let a2 = coopLoadT<coop_mat16x16<f16, A>>(&WS[o + 512u], 16u);
        c20 = coopMultiplyAdd(a2, b0, c20);
        c21 = coopMultiplyAdd(a2, b1, c21);
        let a3 = coopLoadT<coop_mat16x16<f16, A>>(&WS[o + 768u], 16u);
        c30 = coopMultiplyAdd(a3, b0, c30);
        c31 = coopMultiplyAdd(a3, b1, c31);
    }
    coopStoreT(c00, &dst[out(wid.x, lid, 0u)], 16u);
    coopStoreT(c01, &dst[out(wid.x, lid, 1u)], 16u);
    coopStoreT(c10, &dst[out(wid.x, lid, 2u)], 16u);
    coopStoreT(c11, &dst[out(wid.x, lid, 3u)], 16u);
    coopStoreT(c20, &dst[out(wid.x, lid, 4u)], 16u);
    coopStoreT(c21, &dst[out(wid.x, lid, 5u)], 16u);
    coopStoreT(c30, &dst[out(wid.x, lid, 6u)], 16u);
    coopStoreT(c31, &dst[out(wid.x, lid, 7u)], 16u);
}

// The same loop as coop_peak_shared's on src instead of WS: WGSL has no pointer generic over
// address spaces, and keeping the accumulators in one function keeps them in registers.
@compute @workgroup_size(128)
fn coop_peak_global(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    stage(lid);   // only for the zeros; the fragments come from src
    let z = coopLoadT<coop_mat16x16<f32, C>>(&WZ[0], 16u);
    var c00 = z; var c01 = z; var c10 = z; var c11 = z;
    var c20 = z; var c21 = z; var c30 = z; var c31 = z;
    for (var i = 0u; i < p.iters; i++) {
        let o = (i & p.mask) * COPY;
        let b0 = coopLoadT<coop_mat16x16<f16, B>>(&src[o + PA], 32u);
        let b1 = coopLoadT<coop_mat16x16<f16, B>>(&src[o + PA + 16u], 32u);
        let a0 = coopLoadT<coop_mat16x16<f16, A>>(&src[o], 16u);
        c00 = coopMultiplyAdd(a0, b0, c00);
        c01 = coopMultiplyAdd(a0, b1, c01);
        let a1 = coopLoadT<coop_mat16x16<f16, A>>(&src[o + 256u], 16u);
        c10 = coopMultiplyAdd(a1, b0, c10);
        c11 = coopMultiplyAdd(a1, b1, c11);
        let a2 = coopLoadT<coop_mat16x16<f16, A>>(&src[o + 512u], 16u);
        c20 = coopMultiplyAdd(a2, b0, c20);
        c21 = coopMultiplyAdd(a2, b1, c21);
        let a3 = coopLoadT<coop_mat16x16<f16, A>>(&src[o + 768u], 16u);
        c30 = coopMultiplyAdd(a3, b0, c30);
        c31 = coopMultiplyAdd(a3, b1, c31);
    }
    coopStoreT(c00, &dst[out(wid.x, lid, 0u)], 16u);
    coopStoreT(c01, &dst[out(wid.x, lid, 1u)], 16u);
    coopStoreT(c10, &dst[out(wid.x, lid, 2u)], 16u);
    coopStoreT(c11, &dst[out(wid.x, lid, 3u)], 16u);
    coopStoreT(c20, &dst[out(wid.x, lid, 4u)], 16u);
    coopStoreT(c21, &dst[out(wid.x, lid, 5u)], 16u);
    coopStoreT(c30, &dst[out(wid.x, lid, 6u)], 16u);
    coopStoreT(c31, &dst[out(wid.x, lid, 7u)], 16u);
}
