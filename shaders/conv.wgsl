// 2-D convolution (NCHW, groups = 1) as implicit GEMM: the tile loaders compute im2col
// addresses on the fly, so no column buffer is ever materialised. One entry point serves the
// three passes, chosen by p.mode (uniform, so the branch costs nothing on a GPU):
//   0 forward      C[M = N·OH·OW, Cout]     = im2col(x)[M, Cin·KH·KW] · Wᵀ
//   1 input grad   C[M = N·H·W,  Cin]      = gather(dy)[M, Cout·KH·KW] · W'   (any stride: taps
//                  whose output position is not on the stride grid read zero)
//   2 weight grad  C[Cout, Cin·KH·KW]      = dy[Cout, N·OH·OW] · im2col(x), split over K: each
//                  z-slice of the grid sums one K range into its own partial plane, and a
//                  deterministic reduction over the planes follows (no float atomics).
// The tile machinery (64x64 tile, 16x16 invocations, 4x4 register tile as four vec4s indexed
// only with constants, strided ownership) is the same as gemm.wgsl's.

struct Params {
    mode: u32, m: u32, n: u32, k: u32,
    batch: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, kh: u32,
    kw: u32, stride: u32, pad: u32, flags: u32,     // flags: 2 = accumulate into the output
    a_off: u32, b_off: u32, c_off: u32, k_split: u32, // k_split: K elements per z-slice (mode 2)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src_a: array<f32>;   // x (mode 0) or dy (modes 1, 2)
@group(0) @binding(2) var<storage, read> src_b: array<f32>;   // w (modes 0, 1) or x (mode 2)
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;
const THREADS: u32 = 256u;

var<workgroup> As: array<f32, 1024>;   // [BK][BM]
var<workgroup> Bs: array<f32, 1024>;   // [BK][BN]

// im2col(x)[pixel m of the output grid, tap kk]
fn im2col(m: u32, kk: u32, base: u32) -> f32 {
    let ohw = p.oh * p.ow;
    let img = m / ohw;
    let pix = m % ohw;
    let oy = pix / p.ow;
    let ox = pix % p.ow;
    let khw = p.kh * p.kw;
    let ci = kk / khw;
    let r = kk % khw;
    let iy = i32(oy * p.stride + r / p.kw) - i32(p.pad);
    let ix = i32(ox * p.stride + r % p.kw) - i32(p.pad);
    if iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w) { return 0.0; }
    return src_a_or_b_x(base + ((img * p.cin + ci) * p.h + u32(iy)) * p.w + u32(ix));
}

// x lives in src_a in the forward pass and in src_b in the weight-gradient pass.
fn src_a_or_b_x(i: u32) -> f32 {
    if p.mode == 0u { return src_a[i]; }
    return src_b[i];
}

fn load_a(row: u32, kk: u32) -> f32 {
    if row >= p.m || kk >= p.k { return 0.0; }
    switch p.mode {
        case 0u: { return im2col(row, kk, p.a_off); }
        case 1u: {
            // dy tap that reaches input pixel `row` through kernel tap (co, ky, kx)
            let hw = p.h * p.w;
            let img = row / hw;
            let q = row % hw;
            let khw = p.kh * p.kw;
            let co = kk / khw;
            let r = kk % khw;
            let ty = i32(q / p.w + p.pad) - i32(r / p.kw);
            let tx = i32(q % p.w + p.pad) - i32(r % p.kw);
            if ty < 0 || tx < 0 { return 0.0; }
            let uy = u32(ty);
            let ux = u32(tx);
            if uy % p.stride != 0u || ux % p.stride != 0u { return 0.0; }
            let oy = uy / p.stride;
            let ox = ux / p.stride;
            if oy >= p.oh || ox >= p.ow { return 0.0; }
            return src_a[p.a_off + ((img * p.cout + co) * p.oh + oy) * p.ow + ox];
        }
        default: {
            // dy[co = row, pixel kk of N·OH·OW]
            let ohw = p.oh * p.ow;
            return src_a[p.a_off + ((kk / ohw) * p.cout + row) * ohw + kk % ohw];
        }
    }
}

fn load_b(kk: u32, col: u32) -> f32 {
    if kk >= p.k || col >= p.n { return 0.0; }
    let khw = p.kh * p.kw;
    switch p.mode {
        case 0u: { return src_b[p.b_off + col * p.k + kk]; }            // w[co = col, kk]
        case 1u: { return src_b[p.b_off + ((kk / khw) * p.cin + col) * khw + kk % khw]; } // w[co, ci = col, r]
        default: { return im2col(kk, col, p.b_off); }
    }
}

fn store_one(gr: u32, gc: u32, split: u32, value: f32) {
    if gr >= p.m || gc >= p.n { return; }
    var idx: u32;
    switch p.mode {
        case 0u: {
            let ohw = p.oh * p.ow;
            idx = p.c_off + ((gr / ohw) * p.cout + gc) * ohw + gr % ohw;
        }
        case 1u: {
            let hw = p.h * p.w;
            idx = p.c_off + ((gr / hw) * p.cin + gc) * hw + gr % hw;
        }
        default: { idx = p.c_off + (split * p.m + gr) * p.n + gc; }
    }
    var v = value;
    if (p.flags & 2u) != 0u { v += dst[idx]; }
    dst[idx] = v;
}

fn store_row(gr: u32, gc: u32, split: u32, v: vec4<f32>) {
    store_one(gr, gc, split, v.x);
    store_one(gr, gc + 16u, split, v.y);
    store_one(gr, gc + 32u, split, v.z);
    store_one(gr, gc + 48u, split, v.w);
}

@compute @workgroup_size(16, 16)
fn conv_gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let tx = lid3.x;
    let ty = lid3.y;
    let tid = ty * 16u + tx;
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    let split = wid.z;
    var k_begin = 0u;
    var k_end = p.k;
    if p.mode == 2u {
        k_begin = split * p.k_split;
        k_end = min(k_begin + p.k_split, p.k);
    }

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);

    for (var k0 = k_begin; k0 < k_end; k0 += BK) {
        // Neighbouring invocations walk the pixel axis, which is contiguous in NCHW memory.
        for (var r = 0u; r < (BM * BK) / THREADS; r++) {
            let e = tid + r * THREADS;
            var row: u32; var kk: u32;
            if p.mode == 2u { kk = e % BK; row = e / BK; } else { row = e % BM; kk = e / BM; }
            var v = 0.0;
            if k0 + kk < k_end { v = load_a(row0 + row, k0 + kk); }
            As[kk * BM + row] = v;
        }
        for (var r = 0u; r < (BN * BK) / THREADS; r++) {
            let e = tid + r * THREADS;
            var col: u32; var kk: u32;
            if p.mode == 1u { col = e % BN; kk = e / BN; } else { kk = e % BK; col = e / BK; }
            var v = 0.0;
            if k0 + kk < k_end { v = load_b(k0 + kk, col0 + col); }
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

    store_row(row0 + ty, col0 + tx, split, acc0);
    store_row(row0 + ty + 16u, col0 + tx, split, acc1);
    store_row(row0 + ty + 32u, col0 + tx, split, acc2);
    store_row(row0 + ty + 48u, col0 + tx, split, acc3);
}
