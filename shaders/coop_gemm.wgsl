// Tensor-core GEMM: gemm.wgsl's contract (same Params, bindings and strides; C[b] = alpha ·
// A[b]·B[b] (+ bias per column) (+ C[b] if accumulating)) on cooperative matrices, 16x16x16
// f16 x f16 -> f32, the one shape NVIDIA's Vulkan driver offers through naga. Compiled in the
// f16 variant only (`act` = f16), after `enable wgpu_cooperative_matrix;`, and dispatched only
// where the adapter reports that shape (kernels/src/launch/gemm.rs).
//
// One workgroup of 32 invocations (one subgroup on NVIDIA) computes a 32x32 block of C as 2x2
// accumulator tiles. Per 16-deep slice of K it stages A [32x16] and B [16x32] in workgroup
// memory as f16 (any strides, so transposes stay free; zero outside the matrices, so any M, N,
// K work), loads them as cooperative matrices and multiply-adds. Tiles are opaque: the f32
// accumulators go through workgroup memory to the epilogue (alpha, bias, accumulate, rounding
// to f16), which checks bounds element by element. Every cooperative operation sits in
// uniform control flow (the K loop's bound is a uniform).

struct Params {
    m: u32, n: u32, k: u32, flags: u32,      // flags: 1 = add bias[col], 2 = accumulate into C
    a_off: u32, a_rs: u32, a_cs: u32, a_bs: u32,
    b_off: u32, b_rs: u32, b_cs: u32, b_bs: u32,
    c_off: u32, c_rs: u32, c_bs: u32, bias_off: u32,
    alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<act>;
@group(0) @binding(2) var<storage, read> b: array<act>;
@group(0) @binding(3) var<storage, read> bias: array<act>;
@group(0) @binding(4) var<storage, read_write> c: array<act>;

const TM: u32 = 32u;          // rows of C per workgroup (launcher: COOP_TILE)
const TN: u32 = 32u;          // columns of C per workgroup
const TK: u32 = 16u;
const THREADS: u32 = 32u;

var<workgroup> As: array<f16, 512>;     // [TM][TK]
var<workgroup> Bs: array<f16, 512>;     // [TK][TN]
var<workgroup> Cs: array<f32, 1024>;    // [TM][TN]

fn load_a(base: u32, gr: u32, gk: u32) -> f16 {
    let ok = gr < p.m && gk < p.k;
    return select(f16(0.0), f16(a[select(0u, base + gr * p.a_rs + gk * p.a_cs, ok)]), ok);
}

fn load_b(base: u32, gk: u32, gc: u32) -> f16 {
    let ok = gk < p.k && gc < p.n;
    return select(f16(0.0), f16(b[select(0u, base + gk * p.b_rs + gc * p.b_cs, ok)]), ok);
}

@compute @workgroup_size(32)
fn coop_gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row0 = wid.y * TM;
    let col0 = wid.x * TN;
    let batch = wid.z;
    let a_base = p.a_off + batch * p.a_bs;
    let b_base = p.b_off + batch * p.b_bs;

    // Zero accumulators, loaded from zeroed workgroup memory.
    for (var i = 0u; i < TM * TN / THREADS; i++) { Cs[lid + i * THREADS] = 0.0; }
    workgroupBarrier();
    var c00 = coopLoadT<coop_mat16x16<f32, C>>(&Cs[0], TN);
    var c01 = c00;
    var c10 = c00;
    var c11 = c00;

    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        for (var i = 0u; i < TM * TK / THREADS; i++) {
            let idx = lid + i * THREADS;
            As[idx] = load_a(a_base, row0 + idx / TK, k0 + idx % TK);
            Bs[idx] = load_b(b_base, k0 + idx / TN, col0 + idx % TN);
        }
        workgroupBarrier();
        let a0 = coopLoadT<coop_mat16x16<f16, A>>(&As[0], TK);
        let a1 = coopLoadT<coop_mat16x16<f16, A>>(&As[16u * TK], TK);
        let b0 = coopLoadT<coop_mat16x16<f16, B>>(&Bs[0], TN);
        let b1 = coopLoadT<coop_mat16x16<f16, B>>(&Bs[16], TN);
        c00 = coopMultiplyAdd(a0, b0, c00);
        c01 = coopMultiplyAdd(a0, b1, c01);
        c10 = coopMultiplyAdd(a1, b0, c10);
        c11 = coopMultiplyAdd(a1, b1, c11);
        workgroupBarrier();
    }

    coopStoreT(c00, &Cs[0], TN);
    coopStoreT(c01, &Cs[16], TN);
    coopStoreT(c10, &Cs[16u * TN], TN);
    coopStoreT(c11, &Cs[16u * TN + 16u], TN);
    workgroupBarrier();

    let c_base = p.c_off + batch * p.c_bs;
    for (var i = 0u; i < TM * TN / THREADS; i++) {
        let idx = lid + i * THREADS;
        let gr = row0 + idx / TN;
        let gc = col0 + idx % TN;
        if gr < p.m && gc < p.n {
            var v = p.alpha * Cs[idx];
            if (p.flags & 1u) != 0u { v += f32(bias[p.bias_off + gc]); }
            let ci = c_base + gr * p.c_rs + gc;
            if (p.flags & 2u) != 0u { v += f32(c[ci]); }
            c[ci] = act(v);
        }
    }
}
