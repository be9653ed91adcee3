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

fn put_rows(at: u32, v: vec4<f32>) {
    CA[at] = f16(v.x);
    CA[at + 1u] = f16(v.y);
    CA[at + 2u] = f16(v.z);
    CA[at + 3u] = f16(v.w);
}

fn stage_slice(k0: u32) {
    // This slice's depths were decomposed during the previous one's staging (or at entry);
    // the barriers of coop_tile separate every write of a half from its reads.
    let cur = (((k0 - cg.k_begin) / CT_K) % 2u) * CT_K;
    if tid < CT_K {
        DK[CT_K - cur + tid] = depth(cg, k0 + CT_K + tid);
    }
    let ra = 4u * (tid % 32u);
    for (var i = 0u; i < CT_K / 4u; i++) {
        let kk = tid / 32u + 4u * i;
        let d = DK[cur + kk];
        let ok = (crows.y + d.ay < vec4<u32>(cg.ly)) & (crows.x + d.ax < vec4<u32>(cg.lx));
        put_rows(kk * CA_STRIDE + ra, gather(crows.base + d.a, ok, mode != 2u));
    }
    let cb = 4u * (tid % cquads);
    let rows_per_pass = CT_THREADS / cquads;
    for (var j = 0u; j < CT_K / rows_per_pass; j++) {
        let kk = tid / cquads + rows_per_pass * j;
        let d = DK[cur + kk];
        let v = gather(ccols.base + d.b, ccols.ok & vec4<bool>(d.ok), mode == 2u);
        let at = kk * CB_STRIDE + cb;
        CB[at] = f16(v.x);
        CB[at + 1u] = f16(v.y);
        CB[at + 2u] = f16(v.z);
        CB[at + 3u] = f16(v.w);
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
