// Convolution as implicit GEMM, the half shared by conv.wgsl (SIMT tiles) and coop_conv.wgsl
// (cooperative matrices): Params and bindings, the geometry of one z-slice of the grid (mode,
// stride phase, split-K range), the im2col address arithmetic of both operands and of the
// output, and the branch-free gathers. conv.wgsl's header explains the three passes and the
// address scheme. Composed after shaders/prelude.wgsl and before either file
// (kernels/src/shaders.rs).

struct Params {
    mode: u32, m: u32, n: u32, k: u32,
    batch: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, kh: u32,
    kw: u32, stride: u32, pad: u32, flags: u32,     // flags: 2 = accumulate into the output,
                                                      //   4 = write the f32 planes, not dst
    a_off: u32, b_off: u32, c_off: u32, k_split: u32, // k_split: K elements per split
    plane: u32,                                       // elements between split planes
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src_a: array<act>;   // x (mode 0) or dy (modes 1, 2)
@group(0) @binding(2) var<storage, read> src_b: array<act>;   // w (modes 0, 1) or x (mode 2)
@group(0) @binding(3) var<storage, read_write> dst: array<act>;
// Split-K partial sums, f32 in both variants: an f16 pass rounds once, when the planes are
// summed into dst (launch::sum_planes), not once per plane. Unused (bound to a stand-in) when
// the pass writes dst itself.
@group(0) @binding(4) var<storage, read_write> planes: array<f32>;

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

// A coordinate that fails every bounds test, even after adding a small offset of either sign.
const BIG: u32 = 0x40000000u;

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

// Output element (row, col) of this slice sits at the row's index plus the column's: rows r0 to
// r0 + 3 (the direct stores of a row quad).
fn out_rows(g: Geo, r0: u32) -> vec4<u32> {
    return vec4<u32>(out_row(g, r0), out_row(g, r0 + 1u), out_row(g, r0 + 2u), out_row(g, r0 + 3u));
}

// The index of row r's output element in column 0.
fn out_row(g: Geo, r: u32) -> u32 {
    let c0 = p.c_off + g.split * p.plane;
    switch mode {
        case 0u: {
            let ohw = p.oh * p.ow;
            let img = div1(r, ohw);
            return c0 + img * (p.cout * ohw) + r - img * ohw;
        }
        case 1u: {
            let hwp = max(g.hp * g.wp, 1u);
            let img = div1(r, hwp);
            let q = r - img * hwp;
            let yy = div1(q, g.wp);
            let y = yy * p.stride + g.py;
            let x = (q - yy * g.wp) * p.stride + g.px;
            return c0 + img * (p.cin * p.h * p.w) + y * p.w + x;
        }
        default: { return c0 + r; }
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
    if (flags & 4u) != 0u {
        if (flags & 2u) != 0u { v += planes[i]; }
        planes[i] = v;
        return;
    }
    if (flags & 2u) != 0u { v += f32(dst[i]); }
    dst[i] = act(v);
}
