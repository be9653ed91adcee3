// Tensor-core GEMM: gemm.wgsl's contract (same Params, bindings and strides; C[b] = alpha ·
// A[b]·B[b] (+ bias per column) (+ C[b] if accumulating)) on cooperative matrices, through
// parts/coop_tile.wgsl's 128x64 tile. Compiled in the f16 variant only (`act` = f16), after
// `enable wgpu_cooperative_matrix;`, and dispatched only where the adapter reports 16x16x16
// f16 x f16 -> f32 (kernels/src/launch/gemm.rs).
//
// Staging follows the strides: where a row of A runs along K (a_cs = 1) each 32 invocations
// read 32 consecutive elements of one row; where A is stored transposed each invocation walks
// one row along K, so that neighbours read neighbours either way (B likewise). The branch is
// on a uniform, so it costs nothing per element.

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
            CA[r * CA_STRIDE + k] = load_a(row0 + r, k0 + k);
        }
    } else {
        for (var k = 0u; k < CT_K; k++) {
            CA[tid * CA_STRIDE + k] = load_a(row0 + tid, k0 + k);
        }
    }
    if p.b_cs == 1u {
        let col = tid % CT_N;
        for (var k = tid / CT_N; k < CT_K; k += CT_THREADS / CT_N) {
            CB[k * CB_STRIDE + col] = load_b(k0 + k, col0 + col);
        }
    } else {
        let k = tid % 32u;
        for (var col = tid / 32u; col < CT_N; col += CT_THREADS / 32u) {
            CB[k * CB_STRIDE + col] = load_b(k0 + k, col0 + col);
        }
    }
}

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

@compute @workgroup_size(128)
fn coop_gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    row0 = wid.y * CT_M;
    col0 = wid.x * CT_N;
    a_base = p.a_off + wid.z * p.a_bs;
    b_base = p.b_off + wid.z * p.b_bs;
    c_base = p.c_off + wid.z * p.c_bs;
    coop_tile(lid, 0u, p.k);
}
