// 2-D convolution (NCHW, groups = 1) as implicit GEMM: the tile loaders compute im2col
// addresses on the fly, so no column buffer is ever materialised. The same code serves the
// three passes, chosen by p.mode (uniform, so the branches cost nothing on a GPU):
//   0 forward      C[M = N·OH·OW, Cout]   = im2col(x)[M, Cin·KH·KW] · Wᵀ
//   1 input grad   C[M = N·H·W,  Cin]    = gather(dy)[M, Cout·KH·KW] · W', one stride phase
//                  per z-slice of the grid: slice (py, px) = (z / stride, z % stride) owns the
//                  input pixels with y % stride = py and x % stride = px, and runs K only over
//                  the taps that reach them, (ky + py + pad) % stride = 0 and likewise in x. A
//                  stride-2 3x3 pass thus does a quarter of the naive gather's multiply-adds,
//                  and stride 1 is the one phase with every tap.
//   2 weight grad  C[Cin·KH·KW, Cout]    = im2col(x)ᵀ[taps, N·OH·OW] · dyᵀ: the transpose of
//                  dw, so that the long tap axis spans the tile's 256 rows and the short Cout
//                  axis its 64 columns. Split over K: each z-slice of the grid sums one K range
//                  (k_split elements) into its own partial plane [Cout][taps], and a
//                  deterministic reduction over the planes follows (no float atomics).
// Modes 0 and 1 may split K too (on hardware GPUs, when the output alone makes too few
// workgroups to fill the device): z = split * phases + phase, and split s writes the whole
// output, laid out as usual, into plane s (p.plane elements apart) for the same reduction.
// p.m, p.n and p.k are the GEMM's sizes as above (mode 1: the shader derives each phase's own
// M and K; p.m and p.k are unused there).
//
// The tile machinery is gemm.wgsl's (see there for why): every invocation accumulates 4*rq x 8
// outputs in registers, the rows as the quads ty + wg_y*i and the columns as the quads
// tx + wg_x*j; per BK = 8 deep slice of K, A and B are staged in workgroup memory as vec4 words
// (four rows of A or four columns of B at one depth). Three entry points share it (conv_tile),
// for GEMMs of different row counts, all 64 columns wide:
//   conv_gemm        8x16 invocations, 16x8 each: 256 rows. The large passes.
//   conv_gemm_small  8x4 invocations,  16x8 each:  64 rows (late layers at small batch, the
//                    weight grad of early layers), where 256 rows would mostly idle.
//   conv_gemm_tiny   8x4 invocations,   8x8 each:  32 rows (the stem's weight grad: 27 taps).
// The smaller tiles cost more per multiply-add on CPU rasterisers (more staging loads per
// output, fewer multiply-adds per workgroup-memory load); the launcher
// (kernels/src/launch/conv.rs) weighs that against the idle rows, picks one per pass and sizes
// the grid from its tile. A fourth entry point, conv_input_grad_direct at the end, is not a
// GEMM: the input gradient of a stem (Cin <= 4), where any 64-column tile would idle.
//
// Address arithmetic: an im2col element is x[base(row) + off(k)], in bounds when
// y(row) + dy(k) < H and x(row) + dx(k) < W as wrapping u32 (a negative coordinate is huge).
// Every invocation stages its rows (or columns) at one depth of the slice, so it decomposes its
// rows once before the K loop (Rows) and one k per slice (Depth); the per-element work is a
// few adds and compares, and the divisions use a float reciprocal (div4). Rows past M and
// depths past the K range get y = BIG, which fails the bounds test, so no separate guard is
// needed. The per-pass operand roles:
//            A row          A depth k               B column     B
//   mode 0   output pixel   tap (ci, ky, kx)        co           w[co][k]
//   mode 1   input pixel    (co, j, i) of the phase ci           w[co][ci][ky][kx]
//   mode 2   tap            output pixel            co           dy[img][co][pixel]
// Loads are branch-free (an invalid element reads index 0 and is replaced by zero), and
// barriers sit in uniform control flow only.

struct Params {
    mode: u32, m: u32, n: u32, k: u32,
    batch: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, kh: u32,
    kw: u32, stride: u32, pad: u32, flags: u32,     // flags: 2 = accumulate into the output
    a_off: u32, b_off: u32, c_off: u32, k_split: u32, // k_split: K elements per split
    plane: u32,                                       // elements between split planes
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src_a: array<act>;   // x (mode 0) or dy (modes 1, 2)
@group(0) @binding(2) var<storage, read> src_b: array<act>;   // w (modes 0, 1) or x (mode 2)
@group(0) @binding(3) var<storage, read_write> dst: array<act>;

// p.mode and p.flags as every function reads them: set by init() at each entry point.
var<private> mode: u32;
var<private> flags: u32;

// Lavapipe (Mesa 22.x, the CPU Vulkan driver) "inlines uniforms": when folding the params that
// branch conditions read shrinks a shader a lot, as folding p.mode does here (two of three
// passes vanish), it recompiles the shader with the values of every dispatch (~20 ms each,
// more than most passes take). Adding a zero the compiler cannot see through (no binding is
// empty) keeps those conditions opaque; on a GPU it costs one uniform add.
fn init() {
    let zero = select(0u, 1u, arrayLength(&dst) == 0u);
    mode = p.mode + zero;
    flags = p.flags + zero;
}

const BK: u32 = 8u;
// vec4 words per staged depth, for the largest tile (256 rows, 64 columns), plus one of padding
// that staggers the depths across banks on GPUs. The smaller tiles use a part of each.
const AW: u32 = 256u / 4u + 1u;
const BW: u32 = 64u / 4u + 1u;
// A coordinate that fails every bounds test, even after adding a small offset of either sign.
const BIG: u32 = 0x40000000u;

var<workgroup> As: array<vec4<f32>, BK * AW>;   // [BK][row quads (+pad)]
var<workgroup> Bs: array<vec4<f32>, BK * BW>;   // [BK][column quads (+pad)]

// The uniform geometry of one z-slice of the grid.
struct Geo {
    m: u32,                  // rows of the GEMM (mode 1: of this phase)
    split: u32,              // which K range (and output plane) this slice owns
    k_begin: u32,            // the K range this slice sums
    k_end: u32,
    ly: u32,                 // bounds of the gathered image: H x W (x) or OH x OW (dy)
    lx: u32,
    py: u32, px: u32,        // mode 1: the phase
    ky0: u32, kx0: u32,      // mode 1: its first tap, its tap counts, and the dy offset
    nky: u32, nkx: u32,      //   (py + pad) / stride of its first tap
    cy: u32, cx: u32,
    hp: u32, wp: u32,        // mode 1: its input rows and columns
}

fn geo(z: u32) -> Geo {
    var g: Geo;
    g.m = p.m;
    g.k_begin = 0u;
    g.k_end = p.k;
    g.ly = p.h;
    g.lx = p.w;
    let phases = select(1u, p.stride * p.stride, mode == 1u);
    g.split = z / phases;
    if mode == 1u {
        let s = p.stride;
        let phase = z % phases;
        g.py = phase / s;
        g.px = phase % s;
        g.ky0 = (g.py + p.pad) % s;
        g.kx0 = (g.px + p.pad) % s;
        g.cy = (g.py + p.pad) / s;
        g.cx = (g.px + p.pad) / s;
        g.nky = select(0u, (p.kh - g.ky0 + s - 1u) / s, g.ky0 < p.kh);
        g.nkx = select(0u, (p.kw - g.kx0 + s - 1u) / s, g.kx0 < p.kw);
        g.hp = (p.h + s - 1u - g.py) / s;
        g.wp = (p.w + s - 1u - g.px) / s;
        g.m = p.batch * g.hp * g.wp;
        g.k_end = p.cout * g.nky * g.nkx;
        g.ly = p.oh;
        g.lx = p.ow;
    }
    // Trailing splits may own an empty range: they write zeros to their plane.
    g.k_begin = min(g.split * p.k_split, g.k_end);
    g.k_end = min(g.k_begin + p.k_split, g.k_end);
    return g;
}

// Quotient of n by a uniform d >= 1 through a float reciprocal, corrected by one either way:
// exact while the quotient stays below 2^21 (it is an image, channel or coordinate index
// here), and much cheaper on CPU rasterisers, which divide integers lane by lane.
fn div4(n: vec4<u32>, d: u32) -> vec4<u32> {
    let dv = vec4<u32>(d);
    let q = vec4<u32>(vec4<f32>(n) * (1.0 / f32(d)));
    let q1 = select(q, q - 1u, q * dv > n);
    return select(q1, q1 + 1u, n - q1 * dv >= dv);
}

fn div1(n: u32, d: u32) -> u32 {
    let q = u32(f32(n) * (1.0 / f32(d)));
    let q1 = select(q, q - 1u, q * d > n);
    return select(q1, q1 + 1u, n - q1 * d >= d);
}

// A quad of A rows, decomposed once: element (row, k) sits at base + Depth.a and is in bounds
// when y + Depth.ay < ly and x + Depth.ax < lx.
struct Rows {
    base: vec4<u32>,
    y: vec4<u32>,
    x: vec4<u32>,
}

fn rows(g: Geo, r0: u32) -> Rows {
    let r = vec4<u32>(r0) + vec4<u32>(0u, 1u, 2u, 3u);
    var base: vec4<u32>;
    var y: vec4<u32>;
    var x: vec4<u32>;
    switch mode {
        case 0u: {
            // output pixel (img, oy, ox): its window's top-left corner in x
            let ohw = p.oh * p.ow;
            let img = div4(r, ohw);
            let pix = r - img * ohw;
            let oy = div4(pix, p.ow);
            y = oy * p.stride - p.pad;
            x = (pix - oy * p.ow) * p.stride - p.pad;
            base = p.a_off + img * (p.cin * p.h * p.w) + y * p.w + x;
        }
        case 1u: {
            // input pixel (img, yy * stride + py, xx * stride + px) of the phase: the dy
            // pixel its first tap reaches
            let hwp = max(g.hp * g.wp, 1u);
            let img = div4(r, hwp);
            let q = r - img * hwp;
            let yy = div4(q, g.wp);
            y = yy + g.cy;
            x = q - yy * g.wp + g.cx;
            base = p.a_off + img * (p.cout * p.oh * p.ow) + y * p.ow + x;
        }
        default: {
            // tap (ci, ky, kx)
            let khw = p.kh * p.kw;
            let ci = div4(r, khw);
            let t = r - ci * khw;
            y = div4(t, p.kw);
            x = t - y * p.kw;
            base = p.b_off + ci * (p.h * p.w) + y * p.w + x;
        }
    }
    return Rows(base, select(vec4<u32>(BIG), y, r < vec4<u32>(g.m)), x);
}

// A quad of B columns: element (k, col) sits at base + Depth.b.
struct Cols {
    base: vec4<u32>,
    ok: vec4<bool>,
}

fn cols(c0: u32) -> Cols {
    let c = vec4<u32>(c0) + vec4<u32>(0u, 1u, 2u, 3u);
    var base: vec4<u32>;
    switch mode {
        case 0u: { base = p.b_off + c * p.k; }                 // w[co][k]
        case 1u: { base = p.b_off + c * (p.kh * p.kw); }       // w[.][ci][.][.]
        default: { base = p.a_off + c * (p.oh * p.ow); }       // dy[.][co][.]
    }
    return Cols(base, c < vec4<u32>(p.n));
}

// One depth k of the slice, decomposed (the same for every row and column).
struct Depth {
    a: u32,
    ay: u32,
    ax: u32,
    b: u32,
    ok: bool,
}

fn depth(g: Geo, k: u32) -> Depth {
    var d: Depth;
    switch mode {
        case 0u: {
            let khw = p.kh * p.kw;
            let ci = div1(k, khw);
            let t = k - ci * khw;
            let ky = div1(t, p.kw);
            let kx = t - ky * p.kw;
            d = Depth(ci * (p.h * p.w) + ky * p.w + kx, ky, kx, k, true);
        }
        case 1u: {
            // (co, j, i): tap (ky0 + stride * j, kx0 + stride * i) reads dy[cy - j][cx - i]
            // relative to the row's first tap
            let nk = max(g.nky * g.nkx, 1u);
            let co = div1(k, nk);
            let t = k - co * nk;
            let j = div1(t, max(g.nkx, 1u));
            let i = t - j * max(g.nkx, 1u);
            let ky = g.ky0 + p.stride * j;
            let kx = g.kx0 + p.stride * i;
            d = Depth(co * (p.oh * p.ow) - j * p.ow - i, 0u - j, 0u - i, (co * p.cin * p.kh + ky) * p.kw + kx, true);
        }
        default: {
            // output pixel (img, oy, ox)
            let ohw = p.oh * p.ow;
            let img = div1(k, ohw);
            let pix = k - img * ohw;
            let oy = div1(pix, p.ow);
            let iy = oy * p.stride - p.pad;
            let ix = (pix - oy * p.ow) * p.stride - p.pad;
            d = Depth(img * (p.cin * p.h * p.w) + iy * p.w + ix, iy, ix, img * (p.cout * ohw) + pix, true);
        }
    }
    d.ok = k < g.k_end;
    d.ay = select(BIG, d.ay, d.ok);
    return d;
}

// Four elements of src_a (or src_b), zero where not ok. The gathered operand A is x or dy in
// src_a, except in mode 2 (x in src_b); B is the other one.
fn gather(i: vec4<u32>, ok: vec4<bool>, from_a: bool) -> vec4<f32> {
    let j = select(vec4<u32>(0u), i, ok);
    var v: vec4<f32>;
    if from_a {
        v = vec4<f32>(f32(src_a[j.x]), f32(src_a[j.y]), f32(src_a[j.z]), f32(src_a[j.w]));
    } else {
        v = vec4<f32>(f32(src_b[j.x]), f32(src_b[j.y]), f32(src_b[j.z]), f32(src_b[j.w]));
    }
    return select(vec4<f32>(0.0), v, ok);
}

fn stage_a(g: Geo, r: Rows, d: Depth, word: u32) {
    let ok = (r.y + d.ay < vec4<u32>(g.ly)) & (r.x + d.ax < vec4<u32>(g.lx));
    As[word] = gather(r.base + d.a, ok, mode != 2u);
}

fn stage_b(c: Cols, d: Depth, word: u32) {
    Bs[word] = gather(c.base + d.b, c.ok & vec4<bool>(d.ok), mode == 2u);
}

// Output element (row, col) of this slice sits at the row's index plus the column's.
fn out_rows(g: Geo, r0: u32) -> vec4<u32> {
    let r = vec4<u32>(r0) + vec4<u32>(0u, 1u, 2u, 3u);
    let c0 = p.c_off + g.split * p.plane;
    switch mode {
        case 0u: {
            let ohw = p.oh * p.ow;
            let img = div4(r, ohw);
            return c0 + img * (p.cout * ohw) + r - img * ohw;
        }
        case 1u: {
            let hwp = max(g.hp * g.wp, 1u);
            let img = div4(r, hwp);
            let q = r - img * hwp;
            let yy = div4(q, g.wp);
            let y = yy * p.stride + g.py;
            let x = (q - yy * g.wp) * p.stride + g.px;
            return c0 + img * (p.cin * p.h * p.w) + y * p.w + x;
        }
        default: { return c0 + r; }   // plane [co][tap]
    }
}

fn out_col(col: u32) -> u32 {
    switch mode {
        case 0u: { return col * (p.oh * p.ow); }
        case 1u: { return col * (p.h * p.w); }
        default: { return col * p.m; }
    }
}

fn store_one(i: u32, ok: bool, value: f32) {
    if !ok { return; }
    var v = value;
    if (flags & 2u) != 0u { v += f32(dst[i]); }
    dst[i] = act(v);
}

// Row `ri` (valid if `rok`) times the column quad starting at `col`.
fn store4(ri: u32, rok: bool, col: u32, v: vec4<f32>) {
    let c = vec4<u32>(col) + vec4<u32>(0u, 1u, 2u, 3u);
    let ok = vec4<bool>(rok) & (c < vec4<u32>(p.n));
    let i = ri + c * out_col(1u);
    store_one(i.x, ok.x, v.x);
    store_one(i.y, ok.y, v.y);
    store_one(i.z, ok.z, v.z);
    store_one(i.w, ok.w, v.w);
}

// Rows r0..r0+3, column quads at col and col1.
fn store_quad(acc: ptr<function, Quad>, g: Geo, r0: u32, col: u32, col1: u32) {
    let ri = out_rows(g, r0);
    let rok = (vec4<u32>(r0) + vec4<u32>(0u, 1u, 2u, 3u)) < vec4<u32>(g.m);
    store4(ri.x, rok.x, col, (*acc)[0]);
    store4(ri.x, rok.x, col1, (*acc)[1]);
    store4(ri.y, rok.y, col, (*acc)[2]);
    store4(ri.y, rok.y, col1, (*acc)[3]);
    store4(ri.z, rok.z, col, (*acc)[4]);
    store4(ri.z, rok.z, col1, (*acc)[5]);
    store4(ri.w, rok.w, col, (*acc)[6]);
    store4(ri.w, rok.w, col1, (*acc)[7]);
}

// The whole tile for a workgroup of wg_x * wg_y invocations owning rq row quads each (literals
// at every call site, so everything derived from them folds to constants once the shader
// compiler inlines this). Tile: 4 * rq * wg_y rows by 8 * wg_x = 64 columns.
fn conv_tile(wid: vec3<u32>, lid: vec3<u32>, wg_x: u32, wg_y: u32, rq: u32) {
    init();
    let g = geo(wid.z);
    let bm = 4u * rq * wg_y;
    let row0 = wid.y * bm;
    let col0 = wid.x * 8u * wg_x;
    if row0 >= g.m { return; }   // a mode-1 phase with fewer rows than the grid (uniform)
    let tx = lid.x;
    let ty = lid.y;
    let tid = ty * wg_x + tx;

    // Staging slots: every invocation stages depth d of the slice for the row quads
    // q + step * i (i < rq: all bm / 4 of them) and the column quads q + step * j (all 16: one
    // slot at 128 invocations, four at 32).
    let d = tid % BK;
    let q = tid / BK;
    let step = wg_x * wg_y / BK;
    let ra0 = rows(g, row0 + 4u * q);
    let ra1 = rows(g, row0 + 4u * (q + step));
    let ra2 = rows(g, row0 + 4u * (q + 2u * step));
    let ra3 = rows(g, row0 + 4u * (q + 3u * step));
    let cb0 = cols(col0 + 4u * q);
    let cb1 = cols(col0 + 4u * (q + step));
    let cb2 = cols(col0 + 4u * (q + 2u * step));
    let cb3 = cols(col0 + 4u * (q + 3u * step));
    let wa = d * AW + q;
    let wb = d * BW + q;

    var acc0: Quad;   // rows 4 * ty + 0..3
    var acc1: Quad;   // rows 4 * (ty + wg_y) + 0..3
    var acc2: Quad;
    var acc3: Quad;

    for (var k0 = g.k_begin; k0 < g.k_end; k0 += BK) {
        let dk = depth(g, k0 + d);
        stage_a(g, ra0, dk, wa);
        stage_a(g, ra1, dk, wa + step);
        if rq > 2u {
            stage_a(g, ra2, dk, wa + 2u * step);
            stage_a(g, ra3, dk, wa + 3u * step);
        }
        stage_b(cb0, dk, wb);
        if step < 16u {
            stage_b(cb1, dk, wb + step);
            stage_b(cb2, dk, wb + 2u * step);
            stage_b(cb3, dk, wb + 3u * step);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let ao = kk * AW + ty;
            let bo = kk * BW + tx;
            let b0 = Bs[bo];
            let b1 = Bs[bo + wg_x];
            rank1(&acc0, As[ao], b0, b1);
            rank1(&acc1, As[ao + wg_y], b0, b1);
            if rq > 2u {
                rank1(&acc2, As[ao + 2u * wg_y], b0, b1);
                rank1(&acc3, As[ao + 3u * wg_y], b0, b1);
            }
        }
        workgroupBarrier();
    }

    let col = col0 + 4u * tx;
    let col1 = col + 4u * wg_x;
    store_quad(&acc0, g, row0 + 4u * ty, col, col1);
    store_quad(&acc1, g, row0 + 4u * (ty + wg_y), col, col1);
    if rq > 2u {
        store_quad(&acc2, g, row0 + 4u * (ty + 2u * wg_y), col, col1);
        store_quad(&acc3, g, row0 + 4u * (ty + 3u * wg_y), col, col1);
    }
}

@compute @workgroup_size(8, 16)
fn conv_gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    conv_tile(wid, lid, 8u, 16u, 4u);
}

@compute @workgroup_size(8, 4)
fn conv_gemm_small(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    conv_tile(wid, lid, 8u, 4u, 4u);
}

@compute @workgroup_size(8, 4)
fn conv_gemm_tiny(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    conv_tile(wid, lid, 8u, 4u, 2u);
}

// Input gradient with at most four input channels (a network's stem), where a 64-column
// tile would leave 61 of its columns idle. Direct convolution instead: every invocation owns a
// 4x4 block of input pixels of one stride phase (grid z as in mode 1) and all (<= 4) channels
// as a vec4, and per output channel gathers the 6x6 patch of dy that the block's taps read
// (at most 3x3 taps per phase, which the launcher checks), then applies every tap from
// registers: 36 gathers for 144 vec4 multiply-adds, where the GEMM formulation gathers once per
// multiply-add (~6x faster than the 64-column tile on lavapipe's stem). No workgroup memory, no
// barriers. Taps a phase lacks get zero weights. Workgroups of DIRECT_WG invocations cover the
// blocks of all images of the phase in order (launcher: DIRECT_WG).
const DIRECT_WG: u32 = 64u;

// Indexed with constants only (after inlining), like the tiles' accumulators.
var<private> dpatch: array<f32, 36>;         // [6][6] of dy around the block, one channel
var<private> dacc: array<vec4<f32>, 16>;     // [4][4] pixels x channels

struct Block { img: u32, y0: u32, x0: u32 }  // phase image, top-left phase pixel (yy, xx)

fn patch_row(g: Geo, blk: Block, base: u32, pr: u32) {
    let oy = blk.y0 + g.cy - 2u + pr;   // may wrap: then it fails the bound test
    let oy_ok = oy < p.oh;
    let row = base + oy * p.ow;
    let x = blk.x0 + g.cx - 2u;
    dpatch[pr * 6u + 0u] = ld_dy(row, x, oy_ok);
    dpatch[pr * 6u + 1u] = ld_dy(row, x + 1u, oy_ok);
    dpatch[pr * 6u + 2u] = ld_dy(row, x + 2u, oy_ok);
    dpatch[pr * 6u + 3u] = ld_dy(row, x + 3u, oy_ok);
    dpatch[pr * 6u + 4u] = ld_dy(row, x + 4u, oy_ok);
    dpatch[pr * 6u + 5u] = ld_dy(row, x + 5u, oy_ok);
}

fn ld_dy(row: u32, ox: u32, oy_ok: bool) -> f32 {
    let ok = oy_ok && ox < p.ow;
    return select(0.0, f32(src_a[select(0u, row + ox, ok)]), ok);
}

// Pixel (a, b) of the block += dpatch[a + 2 - j][b + 2 - i] * wv.
fn dtap1(a: u32, b: u32, j: u32, i: u32, wv: vec4<f32>) {
    dacc[a * 4u + b] = fma(vec4<f32>(dpatch[(a + 2u - j) * 6u + b + 2u - i]), wv, dacc[a * 4u + b]);
}

fn dtap(g: Geo, co: u32, j: u32, i: u32) {
    let live = j < g.nky && i < g.nkx;
    let wb = p.b_off + (co * p.cin * p.kh + g.ky0 + p.stride * j) * p.kw + g.kx0 + p.stride * i;
    let c = vec4<u32>(0u, 1u, 2u, 3u);
    let ok = (c < vec4<u32>(p.n)) & vec4<bool>(live);
    let wi = select(vec4<u32>(0u), wb + c * (p.kh * p.kw), ok);
    let wv = select(vec4<f32>(0.0), vec4<f32>(f32(src_b[wi.x]), f32(src_b[wi.y]), f32(src_b[wi.z]), f32(src_b[wi.w])), ok);
    dtap1(0u, 0u, j, i, wv); dtap1(0u, 1u, j, i, wv); dtap1(0u, 2u, j, i, wv); dtap1(0u, 3u, j, i, wv);
    dtap1(1u, 0u, j, i, wv); dtap1(1u, 1u, j, i, wv); dtap1(1u, 2u, j, i, wv); dtap1(1u, 3u, j, i, wv);
    dtap1(2u, 0u, j, i, wv); dtap1(2u, 1u, j, i, wv); dtap1(2u, 2u, j, i, wv); dtap1(2u, 3u, j, i, wv);
    dtap1(3u, 0u, j, i, wv); dtap1(3u, 1u, j, i, wv); dtap1(3u, 2u, j, i, wv); dtap1(3u, 3u, j, i, wv);
}

fn dstore1(g: Geo, blk: Block, a: u32, b: u32) {
    let yy = blk.y0 + a;
    let xx = blk.x0 + b;
    let ok = blk.img < p.batch && yy < g.hp && xx < g.wp;
    let ri = p.c_off + blk.img * (p.cin * p.h * p.w) + (yy * p.stride + g.py) * p.w + xx * p.stride + g.px;
    let c = vec4<u32>(0u, 1u, 2u, 3u);
    let cok = vec4<bool>(ok) & (c < vec4<u32>(p.n));
    let i = ri + c * (p.h * p.w);
    let v = dacc[a * 4u + b];
    store_one(i.x, cok.x, v.x);
    store_one(i.y, cok.y, v.y);
    store_one(i.z, cok.z, v.z);
    store_one(i.w, cok.w, v.w);
}

@compute @workgroup_size(64)
fn conv_input_grad_direct(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    init();   // p.mode is 1
    let g = geo(wid.z);
    let bh = (g.hp + 3u) / 4u;
    let bw = (g.wp + 3u) / 4u;
    let nb = max(bh * bw, 1u);
    let id = wid.y * DIRECT_WG + lid.x;
    let img = id / nb;
    let t = id - img * nb;
    let by = t / max(bw, 1u);
    let blk = Block(img, by * 4u, (t - by * max(bw, 1u)) * 4u);
    for (var co = 0u; co < p.cout; co++) {
        let base = p.a_off + (min(img, p.batch - 1u) * p.cout + co) * (p.oh * p.ow);
        patch_row(g, blk, base, 0u);
        patch_row(g, blk, base, 1u);
        patch_row(g, blk, base, 2u);
        patch_row(g, blk, base, 3u);
        patch_row(g, blk, base, 4u);
        patch_row(g, blk, base, 5u);
        dtap(g, co, 0u, 0u); dtap(g, co, 0u, 1u); dtap(g, co, 0u, 2u);
        dtap(g, co, 1u, 0u); dtap(g, co, 1u, 1u); dtap(g, co, 1u, 2u);
        dtap(g, co, 2u, 0u); dtap(g, co, 2u, 1u); dtap(g, co, 2u, 2u);
    }
    dstore1(g, blk, 0u, 0u); dstore1(g, blk, 0u, 1u); dstore1(g, blk, 0u, 2u); dstore1(g, blk, 0u, 3u);
    dstore1(g, blk, 1u, 0u); dstore1(g, blk, 1u, 1u); dstore1(g, blk, 1u, 2u); dstore1(g, blk, 1u, 3u);
    dstore1(g, blk, 2u, 0u); dstore1(g, blk, 2u, 1u); dstore1(g, blk, 2u, 2u); dstore1(g, blk, 2u, 3u);
    dstore1(g, blk, 3u, 0u); dstore1(g, blk, 3u, 1u); dstore1(g, blk, 3u, 2u); dstore1(g, blk, 3u, 3u);
}
