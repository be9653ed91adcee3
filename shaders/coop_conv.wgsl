// The three convolution passes on tensor cores: conv.wgsl's implicit GEMM (the same Params,
// bindings, modes, stride phases and split-K planes, from parts/conv_im2col.wgsl) on
// parts/coop_tile.wgsl's tile of cooperative matrices: 128x64 (coop_conv) or, for 128 output
// columns and more, 128x128 (coop_conv_wide). Compiled in the f16 variant only
// and dispatched only where the adapter reports 16x16x16 f16 x f16 -> f32
// (kernels/src/launch/conv.rs).
//
// Staging a 32-deep slice: A is 32 row quads x 32 depths, and invocation t gathers the quad
// t % 32 (decomposed once, before the K loop) at the depths t / 32 + 4i, so that neighbouring
// invocations read neighbouring pixels (and store to neighbouring banks of the transposed CA);
// B is 16 (32) column quads x 32 depths, quad t % 16 at the depths t / 16 + 8j (t % 32 at
// t / 32 + 4j). The decomposition
// of the slice's 32 depths is shared through workgroup memory (DK): 32 invocations compute the
// next slice's while the current one is gathered, instead of every invocation decomposing
// twelve depths itself. The gathers are conv.wgsl's (branch-free, zero outside), widened to
// f32 and rounded back, which is exact for f16 data.

// The workgroup's z-slice geometry and tile, and this invocation's row and column quads.
var<private> cg: Geo;
var<private> crow0: u32;
var<private> ccol0: u32;
var<private> crows: Rows;
var<private> ccols: Cols;
var<private> cquads: u32;   // column quads of the tile: 16 or 32

// The depths of the current and the next slice, alternating halves.
var<workgroup> DK: array<Depth, 64>;

// Software pipelining of the K loop (a pipeline constant, conv.wgsl's PREFETCH): 1 gathers
// the next slice into registers (prefetch_next, called by coop_tile between the barrier that
// publishes a slice and its multiply-adds) and stages them at the next stage_slice, so the
// gathers' latency hides behind the tensor-core work; 0 gathers each slice while staging it.
// Both stage the same values in the same places.
override PREFETCH: u32 = 0u;

// The slice in flight: this invocation's A row quads (at depths tid / 32 + 4i) and B column
// quads (tid / cquads + b_step() * j), rounded to f16 as staged.
var<private> pa: array<vec4<f16>, 8>;
var<private> pb: array<vec4<f16>, 8>;

// Depths per pass of the B staging (8 narrow, 4 wide), so CT_K / b_step() passes.
fn b_step() -> u32 {
    return CT_THREADS / cquads;
}

// The i-th A row quad of the slice whose depths are DK[half..half + CT_K].
fn a_quad(half: u32, i: u32) -> vec4<f16> {
    let d = DK[half + tid / 32u + 4u * i];
    let ok = (crows.y + d.ay < vec4<u32>(cg.ly)) & (crows.x + d.ax < vec4<u32>(cg.lx));
    return vec4<f16>(gather(crows.base + d.a, ok, mode != 2u));
}

// The j-th B column quad of that slice.
fn b_quad(half: u32, j: u32) -> vec4<f16> {
    let d = DK[half + tid / cquads + b_step() * j];
    return vec4<f16>(gather(ccols.base + d.b, ccols.ok & vec4<bool>(d.ok), mode == 2u));
}

fn stage_slice(k0: u32) {
    // This slice's depths were decomposed during the previous one's staging (or at entry);
    // the barriers of coop_tile separate every write of a half from its reads.
    let cur = (((k0 - cg.k_begin) / CT_K) % 2u) * CT_K;
    if tid < CT_K {
        DK[CT_K - cur + tid] = depth(cg, k0 + CT_K + tid);
    }
    let gather_now = PREFETCH == 0u || k0 == cg.k_begin;
    let ra = 4u * (tid % 32u);
    for (var i = 0u; i < CT_K / 4u; i++) {
        var v = pa[i];
        if gather_now {
            v = a_quad(cur, i);
        }
        let at = (tid / 32u + 4u * i) * CA_STRIDE + ra;
        CA[at] = v.x;
        CA[at + 1u] = v.y;
        CA[at + 2u] = v.z;
        CA[at + 3u] = v.w;
    }
    let cb = 4u * (tid % cquads);
    // A literal trip count (the passes, CT_K / b_step(), are 4 or 8), so that pb is indexed
    // with constants once unrolled and stays in registers.
    for (var j = 0u; j < 8u; j++) {
        if j < CT_K / b_step() {
            var v = pb[j];
            if gather_now {
                v = b_quad(cur, j);
            }
            let at = (tid / cquads + b_step() * j) * CB_STRIDE + cb;
            CB[at] = v.x;
            CB[at + 1u] = v.y;
            CB[at + 2u] = v.z;
            CB[at + 3u] = v.w;
        }
    }
}

// With PREFETCH: gather the slice after k0 (its depths went to the other half of DK during
// stage_slice(k0), published by the barrier before this call). Past the last slice its
// depths fail every bounds test and nothing is loaded.
fn prefetch_next(k0: u32) {
    if PREFETCH == 0u {
        return;
    }
    let next = CT_K - (((k0 - cg.k_begin) / CT_K) % 2u) * CT_K;
    for (var i = 0u; i < CT_K / 4u; i++) {
        pa[i] = a_quad(next, i);
    }
    for (var j = 0u; j < 8u; j++) {
        if j < CT_K / b_step() {
            pb[j] = b_quad(next, j);
        }
    }
}

fn emit_row(r: u32, col: u32, at: u32) {
    let row = crow0 + r;
    if row >= cg.m { return; }
    let ri = out_rows(cg, row).x;
    let step = out_col(1u);
    for (var j = 0u; j < 8u; j++) {
        let c = ccol0 + col + j;
        store_one(ri + c * step, c < p.n, CC[at + j]);
    }
}

fn conv_entry(wid: vec3<u32>, lid: u32, wide: bool) {
    init();
    cg = geo(wid.z);
    cquads = tile_n(wide) / 4u;
    crow0 = wid.y * CT_M;
    ccol0 = wid.x * tile_n(wide);
    if crow0 >= cg.m { return; }   // a mode-1 phase with fewer rows than the grid (uniform)
    crows = rows(cg, crow0 + 4u * (lid % 32u));
    ccols = cols(ccol0 + 4u * (lid % cquads));
    if lid < CT_K {
        DK[lid] = depth(cg, cg.k_begin + lid);   // visible after coop_tile's first barrier
    }
    coop_tile(lid, cg.k_begin, cg.k_end, wide);
}

@compute @workgroup_size(128)
fn coop_conv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    conv_entry(wid, lid, false);
}

@compute @workgroup_size(128)
fn coop_conv_wide(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    conv_entry(wid, lid, true);
}
