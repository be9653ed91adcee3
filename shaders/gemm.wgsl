// C[b] = alpha * A[b] · B[b] (+ bias per column) (+ C[b] if accumulating), f32.
// A and B are addressed through (row, column, batch) strides, so transposes cost nothing.
// Each workgroup computes a BM x BN tile of C, staging BK-deep slices of A and B in
// workgroup memory; each invocation keeps a TM x TN register tile. Invocation (tx, ty) owns
// rows ty + 16*i and columns tx + 16*j: neighbouring invocations then read neighbouring
// words of the staged tiles, which avoids bank conflicts on GPUs and turns into contiguous
// vector loads on CPU rasterisers (lavapipe runs invocations as SIMD lanes).

struct Params {
    m: u32, n: u32, k: u32, flags: u32,      // flags: 1 = add bias[col], 2 = accumulate into C
    a_off: u32, a_rs: u32, a_cs: u32, a_bs: u32,
    b_off: u32, b_rs: u32, b_cs: u32, b_bs: u32,
    c_off: u32, c_rs: u32, c_bs: u32, bias_off: u32,
    alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;
const THREADS: u32 = 256u;

var<workgroup> As: array<f32, 1024>;   // [BK][BM]
var<workgroup> Bs: array<f32, 1024>;   // [BK][BN]

@compute @workgroup_size(16, 16)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let tx = lid3.x;
    let ty = lid3.y;
    let tid = ty * 16u + tx;
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    let batch = wid.z;
    let a_base = p.a_off + batch * p.a_bs;
    let b_base = p.b_off + batch * p.b_bs;
    // Pick the tile-load mapping whose neighbouring invocations read neighbouring addresses.
    let a_k_contig = p.a_cs == 1u;
    let b_n_contig = p.b_cs == 1u;

    // The register tile as four vec4 rows, indexed only with constants: CPU rasterisers do not
    // unroll loops, and a dynamically indexed private array would live in memory there.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);

    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        for (var r = 0u; r < (BM * BK) / THREADS; r++) {
            let e = tid + r * THREADS;
            var row: u32; var kk: u32;
            if a_k_contig { kk = e % BK; row = e / BK; } else { row = e % BM; kk = e / BM; }
            let gr = row0 + row;
            let gk = k0 + kk;
            var v = 0.0;
            if gr < p.m && gk < p.k { v = a[a_base + gr * p.a_rs + gk * p.a_cs]; }
            As[kk * BM + row] = v;
        }
        for (var r = 0u; r < (BN * BK) / THREADS; r++) {
            let e = tid + r * THREADS;
            var col: u32; var kk: u32;
            if b_n_contig { col = e % BN; kk = e / BN; } else { kk = e % BK; col = e / BK; }
            let gc = col0 + col;
            let gk = k0 + kk;
            var v = 0.0;
            if gc < p.n && gk < p.k { v = b[b_base + gk * p.b_rs + gc * p.b_cs]; }
            Bs[kk * BN + col] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let ao = kk * BM + ty;
            let bo = kk * BN + tx;
            let av = vec4<f32>(As[ao], As[ao + 16u], As[ao + 32u], As[ao + 48u]);
            let bv = vec4<f32>(Bs[bo], Bs[bo + 16u], Bs[bo + 32u], Bs[bo + 48u]);
            acc0 = fma(vec4<f32>(av.x), bv, acc0);
            acc1 = fma(vec4<f32>(av.y), bv, acc1);
            acc2 = fma(vec4<f32>(av.z), bv, acc2);
            acc3 = fma(vec4<f32>(av.w), bv, acc3);
        }
        workgroupBarrier();
    }

    let c_base = p.c_off + batch * p.c_bs;
    store_row(c_base, row0 + ty, col0 + tx, acc0);
    store_row(c_base, row0 + ty + 16u, col0 + tx, acc1);
    store_row(c_base, row0 + ty + 32u, col0 + tx, acc2);
    store_row(c_base, row0 + ty + 48u, col0 + tx, acc3);
}

fn store_one(c_base: u32, gr: u32, gc: u32, value: f32) {
    if gr >= p.m || gc >= p.n { return; }
    var v = p.alpha * value;
    if (p.flags & 1u) != 0u { v += bias[p.bias_off + gc]; }
    let idx = c_base + gr * p.c_rs + gc;
    if (p.flags & 2u) != 0u { v += c[idx]; }
    c[idx] = v;
}

// Row gr of the register tile holds columns gc, gc+16, gc+32, gc+48.
fn store_row(c_base: u32, gr: u32, gc: u32, v: vec4<f32>) {
    store_one(c_base, gr, gc, v.x);
    store_one(c_base, gr, gc + 16u, v.y);
    store_one(c_base, gr, gc + 32u, v.z);
    store_one(c_base, gr, gc + 48u, v.w);
}
