// Tensor-core GEMM: gemm.wgsl's contract (same Params, bindings and strides; C[b] = alpha ·
// A[b]·B[b] (+ bias per column) (+ C[b] if accumulating)) on cooperative matrices, through
// parts/coop_tile.wgsl's narrow tile (128x64). Compiled in the f16 variant only (`act` = f16), after
// `enable wgpu_cooperative_matrix;`, and dispatched only where the adapter reports 16x16x16
// f16 x f16 -> f32 (kernels/src/launch/gemm.rs).
//
// A workgroup whose whole tile lies inside C, over row-major A and B whose rows start on
// 16-byte boundaries and K a multiple of 16 (8192^3, most large products), skips workgroup
// memory on the way in: each subgroup loads its fragments straight from the buffers
// (gemm_direct), and the L1 cache serves the rows and columns neighbouring subgroups share.
// Other tiles stage through coop_tile. The choice is uniform per workgroup.
//
// Staging follows the strides: where a row of A runs along K (a_cs = 1) each 32 invocations
// read 32 consecutive elements of one row; where A is stored transposed each invocation walks
// one row along K, so that neighbours read neighbours either way (B likewise). The branch is
// on a uniform, so it costs nothing per element.

// Params and bindings: shaders/parts/gemm_io.wgsl (gemm.wgsl's).

// Columns of C per workgroup: the tile's narrow form (launcher: COOP_TILE_N).
const GT_N: u32 = 64u;

// The workgroup's tile and batch, set at entry.
var<private> row0: u32;
var<private> col0: u32;
var<private> a_base: u32;
var<private> b_base: u32;
var<private> c_base: u32;

fn load_a(gr: u32, gk: u32) -> f16 {
    let ok = gr < p.m && gk < p.k;
    return select(f16(0.0), a[select(0u, a_base + gr * p.a_rs + gk * p.a_cs, ok)], ok);
}

fn load_b(gk: u32, gc: u32) -> f16 {
    let ok = gk < p.k && gc < p.n;
    return select(f16(0.0), b[select(0u, b_base + gk * p.b_rs + gc * p.b_cs, ok)], ok);
}

fn stage_slice(k0: u32) {
    if p.a_cs == 1u {
        let k = tid % 32u;
        for (var r = tid / 32u; r < CT_M; r += CT_THREADS / 32u) {
            CA[k * CA_STRIDE + r] = load_a(row0 + r, k0 + k);
        }
    } else {
        for (var k = 0u; k < CT_K; k++) {
            CA[k * CA_STRIDE + tid] = load_a(row0 + tid, k0 + k);
        }
    }
    if p.b_cs == 1u {
        let col = tid % GT_N;
        for (var k = tid / GT_N; k < CT_K; k += CT_THREADS / GT_N) {
            CB[k * CB_STRIDE + col] = load_b(k0 + k, col0 + col);
        }
    } else {
        let k = tid % 32u;
        for (var col = tid / 32u; col < GT_N; col += CT_THREADS / 32u) {
            CB[k * CB_STRIDE + col] = load_b(k0 + k, col0 + col);
        }
    }
}

// coop_tile's pipelining hook: the GEMM stages each slice when it is needed.
fn prefetch_next(k0: u32) {}

fn emit_row(r: u32, col: u32, at: u32) {
    let gr = row0 + r;
    if gr >= p.m { return; }
    let base = c_base + gr * p.c_rs;
    for (var j = 0u; j < 8u; j++) {
        let gc = col0 + col + j;
        if gc < p.n {
            var v = p.alpha * CC[at + j];
            if (p.flags & 1u) != 0u { v += f32(bias[p.bias_off + gc]); }
            if (p.flags & 2u) != 0u { v += f32(c[base + gc]); }
            c[base + gc] = act(v);
        }
    }
}

// The tile from the buffers directly (see the header); same accumulator layout and epilogue as
// coop_tile.
fn gemm_direct(lid: u32) {
    let sg = lid / 32u;
    let lane = lid % 32u;
    let wr = (sg / 2u) * 64u;
    let wc = (sg % 2u) * 32u;
    let cc = sg * 256u;
    for (var i = lane; i < 256u; i += 32u) { CC[cc + i] = 0.0; }
    workgroupBarrier();
    let zero = coopLoadT<coop_mat16x16<f32, C>>(&CC[cc], 16u);
    var c00 = zero; var c01 = zero;
    var c10 = zero; var c11 = zero;
    var c20 = zero; var c21 = zero;
    var c30 = zero; var c31 = zero;
    let ar = a_base + (row0 + wr) * p.a_rs;
    let bc = b_base + col0 + wc;
    let a16 = 16u * p.a_rs;
    for (var k = 0u; k < p.k; k += 16u) {
        let b0 = coopLoadT<coop_mat16x16<f16, B>>(&b[bc + k * p.b_rs], p.b_rs);
        let b1 = coopLoadT<coop_mat16x16<f16, B>>(&b[bc + k * p.b_rs + 16u], p.b_rs);
        let a0 = coopLoadT<coop_mat16x16<f16, A>>(&a[ar + k], p.a_rs);
        c00 = coopMultiplyAdd(a0, b0, c00);
        c01 = coopMultiplyAdd(a0, b1, c01);
        let a1 = coopLoadT<coop_mat16x16<f16, A>>(&a[ar + a16 + k], p.a_rs);
        c10 = coopMultiplyAdd(a1, b0, c10);
        c11 = coopMultiplyAdd(a1, b1, c11);
        let a2 = coopLoadT<coop_mat16x16<f16, A>>(&a[ar + 2u * a16 + k], p.a_rs);
        c20 = coopMultiplyAdd(a2, b0, c20);
        c21 = coopMultiplyAdd(a2, b1, c21);
        let a3 = coopLoadT<coop_mat16x16<f16, A>>(&a[ar + 3u * a16 + k], p.a_rs);
        c30 = coopMultiplyAdd(a3, b0, c30);
        c31 = coopMultiplyAdd(a3, b1, c31);
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

@compute @workgroup_size(128)
fn coop_gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    row0 = wid.y * CT_M;
    col0 = wid.x * GT_N;
    a_base = p.a_off + wid.z * p.a_bs;
    b_base = p.b_off + wid.z * p.b_bs;
    c_base = p.c_off + wid.z * p.c_bs;
    let inside = row0 + CT_M <= p.m && col0 + GT_N <= p.n && p.k % 16u == 0u;
    let row_major = p.a_cs == 1u && p.b_cs == 1u;
    let aligned = (a_base | p.a_rs | b_base | p.b_rs) % 8u == 0u;
    if inside && row_major && aligned && (p.flags & 4u) != 0u {
        gemm_direct(lid);
    } else {
        coop_tile(lid, 0u, p.k, false);
    }
}
