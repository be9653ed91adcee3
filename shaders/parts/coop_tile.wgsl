// The tensor-core tile shared by coop_gemm.wgsl and coop_conv.wgsl (composed in front of
// them): C[CT_M x n] += A[CT_M x K] · B[K x n] on 16x16x16 f16 x f16 -> f32 cooperative
// matrices, the one shape NVIDIA's Vulkan driver offers through naga, for n = 64 (narrow) or
// 128 (wide) columns.
//
// A workgroup of 128 invocations is four subgroups of 32 (the adapter check demands subgroups
// of exactly 32, and NVIDIA lays a one-dimensional workgroup out in subgroups of consecutive
// indices); subgroup s owns the quarter (s / 2, s % 2) of the tile: 64 rows by 32 columns as
// 4x2 accumulator tiles (narrow), or 64 by 64 as 4x4 (wide: half the fragment loads and, in
// the convolutions, half the gathered rows per multiply-add, at twice the registers). Per
// CT_K = 32-deep slice of K the includer's stage_slice(k0) fills CA (depth x rows: A
// transposed, so that invocations gathering neighbouring rows at one depth store to
// neighbouring banks) and CB (depth x columns) with f16, zero outside the operands, so any
// M, N, K and any gather work; after the barrier that publishes a slice, the includer's
// prefetch_next(k0) may start loading the next one (software pipelining) while this one is
// multiplied; every subgroup then loads 4 A and 2 (4) B fragments per 16 of
// depth and multiply-adds 8 (16) times. Tiles are opaque, so the epilogue goes through
// workgroup memory: each subgroup stores one accumulator tile at a time into its 16x16 corner
// of CC and its invocations hand rows of 8 values to the includer's emit_row(r, c, at)
// (tile-local row r, columns c..c+7, values CC[at..at+8]). Every cooperative operation and
// barrier sits in uniform control flow: the K loop's bounds are uniform for the workgroup,
// and `wide` is a literal at every call, so the shader compiler folds its sections away. Those
// sections are loops of `extra` (0 or 1) iterations rather than `if wide`: naga's uniformity
// analysis counts every function argument as non-uniform and would refuse cooperative
// operations under such an `if`, while the loop, of the same literal count, validates.
//
// Rows of CA and CB are padded by 8 halves: 272-byte rows keep the 16-byte alignment fragment
// loads want while staggering the rows across memory banks.

const CT_M: u32 = 128u;
const CT_N: u32 = 128u;   // the wide tile's columns; the narrow one uses the first 64
const CT_K: u32 = 32u;
const CT_THREADS: u32 = 128u;
const CA_STRIDE: u32 = CT_M + 8u;
const CB_STRIDE: u32 = CT_N + 8u;

var<workgroup> CA: array<f16, CT_K * CA_STRIDE>;   // [k][row]
var<workgroup> CB: array<f16, CT_K * CB_STRIDE>;   // [k][column]
var<workgroup> CC: array<f32, 1024>;               // [subgroup][16][16]

// This invocation's index in the workgroup, for the includer's staging.
var<private> tid: u32;

// Columns of the tile.
fn tile_n(wide: bool) -> u32 {
    return select(64u, 128u, wide);
}

// One accumulator tile has been stored at CC[cc]: hand its 16 rows to emit_row, two
// invocations per row (tile-local origin r0, c0).
fn emit_tile(lane: u32, cc: u32, r0: u32, c0: u32) {
    workgroupBarrier();
    let r = lane / 2u;
    let c = (lane % 2u) * 8u;
    emit_row(r0 + r, c0 + c, cc + r * 16u + c);
    workgroupBarrier();
}

fn coop_tile(lid: u32, k_begin: u32, k_end: u32, wide: bool) {
    tid = lid;
    let sg = lid / 32u;
    let lane = lid % 32u;
    let wr = (sg / 2u) * 64u;                    // the subgroup's first row and column
    let wc = (sg % 2u) * select(32u, 64u, wide);
    let cc = sg * 256u;
    let extra = select(0u, 1u, wide);

    // Accumulators start as zeros loaded from zeroed workgroup memory.
    for (var i = lane; i < 256u; i += 32u) { CC[cc + i] = 0.0; }
    workgroupBarrier();
    let zero = coopLoadT<coop_mat16x16<f32, C>>(&CC[cc], 16u);
    var c00 = zero; var c01 = zero; var c02 = zero; var c03 = zero;
    var c10 = zero; var c11 = zero; var c12 = zero; var c13 = zero;
    var c20 = zero; var c21 = zero; var c22 = zero; var c23 = zero;
    var c30 = zero; var c31 = zero; var c32 = zero; var c33 = zero;

    for (var k0 = k_begin; k0 < k_end; k0 += CT_K) {
        stage_slice(k0);
        workgroupBarrier();
        prefetch_next(k0);
        for (var kk = 0u; kk < CT_K; kk += 16u) {
            let bk = kk * CB_STRIDE + wc;
            let b0 = coopLoadT<coop_mat16x16<f16, B>>(&CB[bk], CB_STRIDE);
            let b1 = coopLoadT<coop_mat16x16<f16, B>>(&CB[bk + 16u], CB_STRIDE);
            var b2 = b0;
            var b3 = b1;
            for (var x = 0u; x < extra; x++) {
                b2 = coopLoadT<coop_mat16x16<f16, B>>(&CB[bk + 32u], CB_STRIDE);
                b3 = coopLoadT<coop_mat16x16<f16, B>>(&CB[bk + 48u], CB_STRIDE);
            }
            let ak = kk * CA_STRIDE + wr;
            let a0 = coopLoad<coop_mat16x16<f16, A>>(&CA[ak], CA_STRIDE);
            c00 = coopMultiplyAdd(a0, b0, c00);
            c01 = coopMultiplyAdd(a0, b1, c01);
            for (var x = 0u; x < extra; x++) {
                c02 = coopMultiplyAdd(a0, b2, c02);
                c03 = coopMultiplyAdd(a0, b3, c03);
            }
            let a1 = coopLoad<coop_mat16x16<f16, A>>(&CA[ak + 16u], CA_STRIDE);
            c10 = coopMultiplyAdd(a1, b0, c10);
            c11 = coopMultiplyAdd(a1, b1, c11);
            for (var x = 0u; x < extra; x++) {
                c12 = coopMultiplyAdd(a1, b2, c12);
                c13 = coopMultiplyAdd(a1, b3, c13);
            }
            let a2 = coopLoad<coop_mat16x16<f16, A>>(&CA[ak + 32u], CA_STRIDE);
            c20 = coopMultiplyAdd(a2, b0, c20);
            c21 = coopMultiplyAdd(a2, b1, c21);
            for (var x = 0u; x < extra; x++) {
                c22 = coopMultiplyAdd(a2, b2, c22);
                c23 = coopMultiplyAdd(a2, b3, c23);
            }
            let a3 = coopLoad<coop_mat16x16<f16, A>>(&CA[ak + 48u], CA_STRIDE);
            c30 = coopMultiplyAdd(a3, b0, c30);
            c31 = coopMultiplyAdd(a3, b1, c31);
            for (var x = 0u; x < extra; x++) {
                c32 = coopMultiplyAdd(a3, b2, c32);
                c33 = coopMultiplyAdd(a3, b3, c33);
            }
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
    for (var x = 0u; x < extra; x++) {
        coopStoreT(c02, &CC[cc], 16u); emit_tile(lane, cc, wr, wc + 32u);
        coopStoreT(c03, &CC[cc], 16u); emit_tile(lane, cc, wr, wc + 48u);
        coopStoreT(c12, &CC[cc], 16u); emit_tile(lane, cc, wr + 16u, wc + 32u);
        coopStoreT(c13, &CC[cc], 16u); emit_tile(lane, cc, wr + 16u, wc + 48u);
        coopStoreT(c22, &CC[cc], 16u); emit_tile(lane, cc, wr + 32u, wc + 32u);
        coopStoreT(c23, &CC[cc], 16u); emit_tile(lane, cc, wr + 32u, wc + 48u);
        coopStoreT(c32, &CC[cc], 16u); emit_tile(lane, cc, wr + 48u, wc + 32u);
        coopStoreT(c33, &CC[cc], 16u); emit_tile(lane, cc, wr + 48u, wc + 48u);
    }
}
