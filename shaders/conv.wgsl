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
// (four rows of A or four columns of B at one depth). Five entry points share it (conv_tile),
// for GEMMs of different row counts, 64 columns wide (one, the narrow tile, 32):
//   conv_gemm        8x16 invocations, 16x8 each: 256 rows. The large passes.
//   conv_gemm_mid    8x8 invocations,  16x8 each: 128 rows, between the two (a plan
//                    candidate for `autorep tune`).
//   conv_gemm_small  8x4 invocations,  16x8 each:  64 rows (late layers at small batch, the
//                    weight grad of early layers), where 256 rows would mostly idle.
//   conv_gemm_tiny   8x4 invocations,   8x8 each:  32 rows (the stem's weight grad: 27 taps).
//   conv_gemm_narrow 4x32 invocations,  8x8 each: 256 rows by 32 columns, for passes with at
//                    most 32 output columns past a multiple of 64 (16 -> WRN's first group's
//                    input gradient, EfficientNet's 24- and 88-channel projections), where a
//                    64-column tile would compute up to 75 % idle columns.
// The smaller tiles cost more per multiply-add on CPU rasterisers (more staging loads per
// output, fewer multiply-adds per workgroup-memory load); the launcher
// (kernels/src/launch/conv.rs) weighs that against the idle rows, picks one per pass and sizes
// the grid from its tile. A sixth entry point, conv_input_grad_direct at the end, is not a
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

// The shared half (Params, bindings, the geometry of a z-slice, the im2col address
// arithmetic, the gathers and the output addressing) is shaders/parts/conv_im2col.wgsl,
// composed in front of this file; shaders/coop_conv.wgsl runs the same passes on tensor cores.

const BK: u32 = 8u;
// vec4 words per staged depth, for the largest tile (256 rows, 64 columns), plus one of padding
// that staggers the depths across banks on GPUs. The smaller tiles use a part of each.
const AW: u32 = 256u / 4u + 1u;
const BW: u32 = 64u / 4u + 1u;

var<workgroup> As: array<vec4<f32>, BK * AW>;   // [BK][row quads (+pad)]
var<workgroup> Bs: array<vec4<f32>, BK * BW>;   // [BK][column quads (+pad)]

// Four rows of A (a row quad) or four columns of B at one depth of a slice, zero outside.
fn fetch_a(g: Geo, r: Rows, d: Depth) -> vec4<f32> {
    let ok = (r.y + d.ay < vec4<u32>(g.ly)) & (r.x + d.ax < vec4<u32>(g.lx));
    return gather(r.base + d.a, ok, mode != 2u);
}

fn fetch_b(c: Cols, d: Depth) -> vec4<f32> {
    return gather(c.base + d.b, c.ok & vec4<bool>(d.ok), mode == 2u);
}

// Software pipelining of the K loop (a pipeline constant, set by the launcher): 1 issues the
// next slice's global loads before the current slice's multiply-adds, holding them in
// registers until the slice is staged, so that their latency hides behind the arithmetic
// instead of stalling the workgroup at its barrier; 0 loads each slice just before staging it.
// Both stage the same values in the same order.
override PREFETCH: u32 = 0u;

// An invocation's staging slots (see conv_tile), decomposed once, and the slice in flight:
// its row quads of A and column quads of B at its depth of the slice.
var<private> ra0: Rows;
var<private> ra1: Rows;
var<private> ra2: Rows;
var<private> ra3: Rows;
var<private> cb0: Cols;
var<private> cb1: Cols;
var<private> cb2: Cols;
var<private> cb3: Cols;
var<private> fa0: vec4<f32>;
var<private> fa1: vec4<f32>;
var<private> fa2: vec4<f32>;
var<private> fa3: vec4<f32>;
var<private> fb0: vec4<f32>;
var<private> fb1: vec4<f32>;
var<private> fb2: vec4<f32>;
var<private> fb3: vec4<f32>;

// Load depth k of the slots (a_slots and b_slots as in conv_tile: literals after inlining).
// A depth past the K range fails every bounds test, so the prefetch past the last slice loads
// nothing.
fn fetch_slice(g: Geo, k: u32, a_slots: u32, b_slots: u32) {
    let dk = depth(g, k);
    fa0 = fetch_a(g, ra0, dk);
    fa1 = fetch_a(g, ra1, dk);
    if a_slots > 2u {
        fa2 = fetch_a(g, ra2, dk);
        fa3 = fetch_a(g, ra3, dk);
    }
    fb0 = fetch_b(cb0, dk);
    if b_slots > 1u {
        fb1 = fetch_b(cb1, dk);
    }
    if b_slots > 2u {
        fb2 = fetch_b(cb2, dk);
        fb3 = fetch_b(cb3, dk);
    }
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

// The whole tile for a workgroup of wg_x * wg_y invocations owning rq (2 or 4) row quads and
// two column quads each (literals at every call site, so everything derived from them folds to
// constants once the shader compiler inlines this). Tile: 4 * rq * wg_y rows by 8 * wg_x
// columns (64, or 32 for the narrow tile).
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
    // q + step * i (i < a_slots: all bm / 4 of them; at most four) and the column quads
    // q + step * j (j < b_slots: all 2 * wg_x of them; one slot at 128 invocations, two at 64,
    // four at 32; the narrow tile's 8 column quads leave half of its 16 slots idle).
    let d = tid % BK;
    let q = tid / BK;
    let step = wg_x * wg_y / BK;
    let a_slots = 8u * rq / wg_x;
    let b_slots = max(1u, 2u * wg_x / step);
    ra0 = rows(g, row0 + 4u * q);
    ra1 = rows(g, row0 + 4u * (q + step));
    ra2 = rows(g, row0 + 4u * (q + 2u * step));
    ra3 = rows(g, row0 + 4u * (q + 3u * step));
    cb0 = cols(col0 + 4u * q);
    cb0.ok = cb0.ok & vec4<bool>(q < 2u * wg_x);   // past the tile's columns (narrow tile)
    cb1 = cols(col0 + 4u * (q + step));
    cb2 = cols(col0 + 4u * (q + 2u * step));
    cb3 = cols(col0 + 4u * (q + 3u * step));
    let wa = d * AW + q;
    let wb = d * BW + q;

    var acc0: Quad;   // rows 4 * ty + 0..3
    var acc1: Quad;   // rows 4 * (ty + wg_y) + 0..3
    var acc2: Quad;
    var acc3: Quad;

    for (var k0 = g.k_begin; k0 < g.k_end; k0 += BK) {
        if PREFETCH == 0u || k0 == g.k_begin {
            fetch_slice(g, k0 + d, a_slots, b_slots);
        }
        As[wa] = fa0;
        As[wa + step] = fa1;
        if a_slots > 2u {
            As[wa + 2u * step] = fa2;
            As[wa + 3u * step] = fa3;
        }
        Bs[wb] = fb0;
        if b_slots > 1u {
            Bs[wb + step] = fb1;
        }
        if b_slots > 2u {
            Bs[wb + 2u * step] = fb2;
            Bs[wb + 3u * step] = fb3;
        }
        workgroupBarrier();
        if PREFETCH != 0u {
            fetch_slice(g, k0 + BK + d, a_slots, b_slots);
        }
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

    if STAGED_STORE != 0u {
        // The calls hold barriers: wg_x, wg_y and rq are literals at every call of conv_tile,
        // so the workgroup takes every branch and loop bound here as one.
        let t = Tid(tx, ty, tid);
        staged_group(&acc0, g, t, wg_x, wg_y, row0, col0, 0u);
        staged_group(&acc1, g, t, wg_x, wg_y, row0, col0, 1u);
        if rq > 2u {
            staged_group(&acc2, g, t, wg_x, wg_y, row0, col0, 2u);
            staged_group(&acc3, g, t, wg_x, wg_y, row0, col0, 3u);
        }
        return;
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

// The staged epilogue (pipeline constant STAGED_STORE = 1, a plan setting): each row group's
// accumulators go through workgroup memory (As, free after the K loop) so that consecutive
// invocations store consecutive rows of one column: in the forward pass (NCHW) and the weight
// gradient's planes those are consecutive addresses, which a GPU writes as whole memory
// sectors, where the direct stores of 0 hand each subgroup 4-row pieces of eight columns
// (a quarter of every sector it touches). Same values, same places.
override STAGED_STORE: u32 = 0u;

// An invocation's place in its workgroup (the workgroup's shape travels apart from it, as
// literals, so that the loop bounds that depend on it stay uniform).
struct Tid { tx: u32, ty: u32, id: u32 }

// Element f of the staging area, [row][column] with a row pitch of columns + 1 (As as floats:
// rows of at most 32, columns of at most 64, so 32 x 65 = 2080 floats = As exactly).
fn e_put(f: u32, v: f32) {
    As[f / 4u][f % 4u] = v;
}

fn e_get(f: u32) -> f32 {
    return As[f / 4u][f % 4u];
}

// Row group i of the tile (the row quads ty + wg_y * i, held in acc), in rounds of at most
// eight row quads (32 rows): the round's invocations stage their 4 x 8 blocks, then every
// invocation stores (rows x columns) / invocations elements, consecutive invocations taking
// consecutive rows of a column.
fn staged_group(acc: ptr<function, Quad>, g: Geo, t: Tid, wg_x: u32, wg_y: u32, row0: u32, col0: u32, i: u32) {
    let per_round = min(wg_y, 8u);
    let rows = 4u * per_round;
    let cols = 8u * wg_x;
    let pitch = cols + 1u;
    let invocations = wg_x * wg_y;
    for (var round = 0u; round < wg_y / per_round; round++) {
        let q0 = round * per_round;
        if t.ty >= q0 && t.ty < q0 + per_round {
            let lr = 4u * (t.ty - q0);
            let c = 4u * t.tx;
            let c1 = c + 4u * wg_x;
            for (var r = 0u; r < 4u; r++) {
                let v0 = (*acc)[2u * r];
                let v1 = (*acc)[2u * r + 1u];
                let f = (lr + r) * pitch;
                e_put(f + c, v0.x);
                e_put(f + c + 1u, v0.y);
                e_put(f + c + 2u, v0.z);
                e_put(f + c + 3u, v0.w);
                e_put(f + c1, v1.x);
                e_put(f + c1 + 1u, v1.y);
                e_put(f + c1 + 2u, v1.z);
                e_put(f + c1 + 3u, v1.w);
            }
        }
        workgroupBarrier();
        let grow0 = row0 + 4u * (wg_y * i + q0);
        for (var e = 0u; e < rows * cols / invocations; e++) {
            let idx = t.id + e * invocations;
            let r = idx % rows;
            let c = idx / rows;
            let grow = grow0 + r;
            let gcol = col0 + c;
            let ok = grow < g.m && gcol < p.n;
            store_one(out_row(g, grow) + gcol * out_col(1u), ok, e_get(r * pitch + c));
        }
        workgroupBarrier();
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

@compute @workgroup_size(8, 8)
fn conv_gemm_mid(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    conv_tile(wid, lid, 8u, 8u, 4u);
}

@compute @workgroup_size(4, 32)
fn conv_gemm_narrow(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    conv_tile(wid, lid, 4u, 32u, 2u);
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
