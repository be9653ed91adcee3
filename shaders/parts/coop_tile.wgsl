// The tensor-core tile shared by coop_gemm.wgsl and coop_conv.wgsl (composed in front of
// them): C[CT_M x CT_N] += A[CT_M x K] · B[K x CT_N] on 16x16x16 f16 x f16 -> f32 cooperative
// matrices, the one shape NVIDIA's Vulkan driver offers through naga.
//
// A workgroup of 128 invocations is four subgroups of 32 (the adapter check demands subgroups
// of exactly 32, and NVIDIA lays a one-dimensional workgroup out in subgroups of consecutive
// indices); subgroup s owns the 64x32 quarter (s / 2, s % 2) of the 128x64 tile as 4x2
// accumulator tiles. Per CT_K = 32-deep slice of K the includer's stage_slice(k0) fills CA
// (depth x rows: A transposed, so that invocations gathering neighbouring rows at one depth
// store to neighbouring banks) and CB (depth x columns) with f16, zero outside the operands,
// so any M, N, K and any gather work; every subgroup then loads 4 A and 2 B fragments per 16 of depth and
// multiply-adds 8 times. Tiles are opaque, so the epilogue goes through workgroup memory:
// each subgroup stores one accumulator tile at a time into its 16x16 corner of CC and its
// invocations hand rows of 8 values to the includer's emit_row(r, c, at) (tile-local row r,
// columns c..c+7, values CC[at..at+8]). Every cooperative operation and barrier sits in
// uniform control flow: the K loop's bounds are uniform for the workgroup.
//
// Rows of CA and CB are padded by 8 halves: 272- and 144-byte rows keep the 16-byte alignment
// fragment loads want while staggering the rows across memory banks.

const CT_M: u32 = 128u;
const CT_N: u32 = 64u;
const CT_K: u32 = 32u;
const CT_THREADS: u32 = 128u;
const CA_STRIDE: u32 = CT_M + 8u;
const CB_STRIDE: u32 = CT_N + 8u;

var<workgroup> CA: array<f16, CT_K * CA_STRIDE>;   // [k][row]
var<workgroup> CB: array<f16, CT_K * CB_STRIDE>;   // [k][column]
var<workgroup> CC: array<f32, 1024>;               // [subgroup][16][16]

// This invocation's index in the workgroup, for the includer's staging.
var<private> tid: u32;

// One accumulator tile has been stored at CC[cc]: hand its 16 rows to emit_row, two
// invocations per row (tile-local origin r0, c0).
fn emit_tile(lane: u32, cc: u32, r0: u32, c0: u32) {
    workgroupBarrier();
    let r = lane / 2u;
    let c = (lane % 2u) * 8u;
    emit_row(r0 + r, c0 + c, cc + r * 16u + c);
    workgroupBarrier();
}

fn coop_tile(lid: u32, k_begin: u32, k_end: u32) {
    tid = lid;
    let sg = lid / 32u;
    let lane = lid % 32u;
    let wr = (sg / 2u) * 64u;   // the subgroup's first row and column in the tile
    let wc = (sg % 2u) * 32u;
    let cc = sg * 256u;

    // Accumulators start as zeros loaded from zeroed workgroup memory.
    for (var i = lane; i < 256u; i += 32u) { CC[cc + i] = 0.0; }
    workgroupBarrier();
    let zero = coopLoadT<coop_mat16x16<f32, C>>(&CC[cc], 16u);
    var c00 = zero; var c01 = zero;
    var c10 = zero; var c11 = zero;
    var c20 = zero; var c21 = zero;
    var c30 = zero; var c31 = zero;

    for (var k0 = k_begin; k0 < k_end; k0 += CT_K) {
        stage_slice(k0);
        workgroupBarrier();
        for (var kk = 0u; kk < CT_K; kk += 16u) {
            let b0 = coopLoadT<coop_mat16x16<f16, B>>(&CB[kk * CB_STRIDE + wc], CB_STRIDE);
            let b1 = coopLoadT<coop_mat16x16<f16, B>>(&CB[kk * CB_STRIDE + wc + 16u], CB_STRIDE);
            let a0 = coopLoad<coop_mat16x16<f16, A>>(&CA[kk * CA_STRIDE + wr], CA_STRIDE);
            c00 = coopMultiplyAdd(a0, b0, c00);
            c01 = coopMultiplyAdd(a0, b1, c01);
            let a1 = coopLoad<coop_mat16x16<f16, A>>(&CA[kk * CA_STRIDE + wr + 16u], CA_STRIDE);
            c10 = coopMultiplyAdd(a1, b0, c10);
            c11 = coopMultiplyAdd(a1, b1, c11);
            let a2 = coopLoad<coop_mat16x16<f16, A>>(&CA[kk * CA_STRIDE + wr + 32u], CA_STRIDE);
            c20 = coopMultiplyAdd(a2, b0, c20);
            c21 = coopMultiplyAdd(a2, b1, c21);
            let a3 = coopLoad<coop_mat16x16<f16, A>>(&CA[kk * CA_STRIDE + wr + 48u], CA_STRIDE);
            c30 = coopMultiplyAdd(a3, b0, c30);
            c31 = coopMultiplyAdd(a3, b1, c31);
        }
        workgroupBarrier();
    }

    coopStoreT(c00, &CC[cc], 16u); emit_tile(lane, cc, wr, wc);
    coopStoreT(c01, &CC[cc], 16u); emit_tile(lane, cc, wr, wc + 16u);
    coopStoreT(c10, &CC[cc], 16u); emit_tile(lane, cc, wr + 16u, wc);
    coopStoreT(c11, &CC[cc], 16u); emit_tile(lane, cc, wr + 16u, wc + 16u);
    coopStoreT(c20, &CC[cc], 16u); emit_tile(lane, cc, wr + 32u, wc);
    coopStoreT(c21, &CC[cc], 16u); emit_tile(lane, cc, wr + 32u, wc + 16u);
    coopStoreT(c30, &CC[cc], 16u); emit_tile(lane, cc, wr + 48u, wc);
    coopStoreT(c31, &CC[cc], 16u); emit_tile(lane, cc, wr + 48u, wc + 16u);
}
