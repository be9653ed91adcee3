// C[b] = alpha * A[b] · B[b] (+ bias per column) (+ C[b] if accumulating), accumulated in f32.
// A and B are addressed through (row, column, batch) strides, so transposes cost nothing.
//
// Each workgroup of 8x16 invocations computes a 256x64 tile of C. Per BK-deep slice of K it
// stages A and B in workgroup memory as vec4 words (4 rows of A, or 4 columns of B, at one
// depth), then every invocation multiplies them into a 16x8 register tile. Invocation (tx, ty)
// owns the row quads ty + 16*i and the column quads tx + 8*j: neighbouring invocations read
// neighbouring vec4 words, conflict-free on GPUs.
//
// Why the register tile is this large: CPU rasterisers (lavapipe/llvmpipe) run each invocation
// as a SIMD lane, and every workgroup-memory load is a loop over the lanes whose cost hardly
// depends on whether it fetches one float or a vec4. Speed there is bounded by FMAs per load
// instruction: 16x8 gives 128 FMAs for six vec4 loads (8x8 gives 64 for four; ~1.2x slower at
// 1024^3, 4x4 with scalar loads ~5x slower), while 128 accumulators per invocation is still a
// register budget GPUs sustain. The tile is only 64 columns wide because ResNet-style GEMMs
// often have N = 64; its 256 rows spread each staged slice of B over more FMAs instead.
//
// Private data is indexed only with constants (the accumulators are arrays touched with literal
// indices after inlining): llvmpipe does not unroll loops, and a dynamically indexed private
// array would be spilled to memory and gathered lane by lane.
// Barriers sit in uniform control flow only. Global loads are branch-free: an out-of-range
// element reads index 0 (every binding holds at least one element) and is replaced by zero.
// The launcher (kernels/src/launch/gemm.rs) sizes the grid from BM and BN, and may bind byte
// windows of A, B and C with the residual offsets in a_off, b_off and c_off.

// Params and bindings: shaders/parts/gemm_io.wgsl, composed in front (shared with
// coop_gemm.wgsl, which takes the same parameter block).

const WG_X: u32 = 8u;
const WG_Y: u32 = 16u;
const THREADS: u32 = WG_X * WG_Y;
const BM: u32 = 16u * WG_Y;          // 256 rows of C per workgroup (launcher: TILE_M)
const BN: u32 = 8u * WG_X;           // 64 columns (launcher: TILE_N)
const BK: u32 = 8u;
// vec4 words per staged depth; the +1 staggers the depths across banks so the transposing
// stores of a k-contiguous operand do not all hit one bank on GPUs.
const AW: u32 = BM / 4u + 1u;
const BW: u32 = BN / 4u + 1u;

// The staging below gives each invocation four slots of A and one of B per slice.
const_assert BM / 4u * BK == 4u * THREADS && BN / 4u * BK == THREADS;

var<workgroup> As: array<vec4<f32>, BK * AW>;   // [BK][BM/4 (+pad)]
var<workgroup> Bs: array<vec4<f32>, BK * BW>;   // [BK][BN/4 (+pad)]

// One staging slot of an invocation: four consecutive rows of A (or columns of B) at one depth
// of the slice, fixed for the whole K loop.
struct Slot {
    off: u32,     // element index of the first of the four at k0 = 0
    first: u32,   // global row (A) or column (B) of the first
    depth: u32,   // depth within the slice
    word: u32,    // destination word in As / Bs
}

fn a_slot(s: u32, row0: u32, a_base: u32) -> Slot {
    // Neighbouring invocations take neighbouring addresses: along k if A is k-contiguous.
    let k_contig = p.a_cs == 1u;
    let q = select(s % (BM / 4u), s / BK, k_contig);
    let kk = select(s / (BM / 4u), s % BK, k_contig);
    let row = row0 + 4u * q;
    return Slot(a_base + row * p.a_rs + kk * p.a_cs, row, kk, kk * AW + q);
}

fn b_slot(s: u32, col0: u32, b_base: u32) -> Slot {
    let n_contig = p.b_cs == 1u;
    let q = select(s / BK, s % (BN / 4u), n_contig);
    let kk = select(s % BK, s / (BN / 4u), n_contig);
    let col = col0 + 4u * q;
    return Slot(b_base + kk * p.b_rs + col * p.b_cs, col, kk, kk * BW + q);
}

fn ld_a(i: u32, ok: bool) -> f32 {
    return select(0.0, f32(a[select(0u, i, ok)]), ok);
}

fn ld_b(i: u32, ok: bool) -> f32 {
    return select(0.0, f32(b[select(0u, i, ok)]), ok);
}

// Four rows of A (or columns of B) of a slot at slice k0, zero outside the operands.
fn fetch_a(s: Slot, k0: u32) -> vec4<f32> {
    let k_ok = k0 + s.depth < p.k;
    let i = s.off + k0 * p.a_cs;
    let rs = p.a_rs;
    return vec4<f32>(ld_a(i, k_ok && s.first < p.m), ld_a(i + rs, k_ok && s.first + 1u < p.m),
                     ld_a(i + 2u * rs, k_ok && s.first + 2u < p.m),
                     ld_a(i + 3u * rs, k_ok && s.first + 3u < p.m));
}

fn fetch_b(s: Slot, k0: u32) -> vec4<f32> {
    let k_ok = k0 + s.depth < p.k;
    let i = s.off + k0 * p.b_rs;
    let cs = p.b_cs;
    return vec4<f32>(ld_b(i, k_ok && s.first < p.n), ld_b(i + cs, k_ok && s.first + 1u < p.n),
                     ld_b(i + 2u * cs, k_ok && s.first + 2u < p.n),
                     ld_b(i + 3u * cs, k_ok && s.first + 3u < p.n));
}

// Software pipelining of the K loop (a pipeline constant, set by the launcher; conv.wgsl has
// the same): 1 loads the next slice right after the barrier that publishes the current one
// and holds it in registers through the multiply-adds, so the loads' latency hides behind
// them; 0 loads each slice just before staging it. Both stage the same values.
override PREFETCH: u32 = 0u;

@compute @workgroup_size(8, 16)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tx = lid.x;
    let ty = lid.y;
    let tid = ty * WG_X + tx;
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    let batch = wid.z;
    let a_base = p.a_off + batch * p.a_bs;
    let b_base = p.b_off + batch * p.b_bs;

    let sa0 = a_slot(tid, row0, a_base);
    let sa1 = a_slot(tid + THREADS, row0, a_base);
    let sa2 = a_slot(tid + 2u * THREADS, row0, a_base);
    let sa3 = a_slot(tid + 3u * THREADS, row0, a_base);
    let sb0 = b_slot(tid, col0, b_base);

    var acc0: Quad;   // rows 4 * ty + 0..3
    var acc1: Quad;   // rows 4 * (ty + 16) + 0..3
    var acc2: Quad;
    var acc3: Quad;

    // The slice in flight (past the last slice every load is out of range and reads nothing).
    var fa0: vec4<f32>;
    var fa1: vec4<f32>;
    var fa2: vec4<f32>;
    var fa3: vec4<f32>;
    var fb0: vec4<f32>;
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        if PREFETCH == 0u || k0 == 0u {
            fa0 = fetch_a(sa0, k0);
            fa1 = fetch_a(sa1, k0);
            fa2 = fetch_a(sa2, k0);
            fa3 = fetch_a(sa3, k0);
            fb0 = fetch_b(sb0, k0);
        }
        As[sa0.word] = fa0;
        As[sa1.word] = fa1;
        As[sa2.word] = fa2;
        As[sa3.word] = fa3;
        Bs[sb0.word] = fb0;
        workgroupBarrier();
        if PREFETCH != 0u {
            fa0 = fetch_a(sa0, k0 + BK);
            fa1 = fetch_a(sa1, k0 + BK);
            fa2 = fetch_a(sa2, k0 + BK);
            fa3 = fetch_a(sa3, k0 + BK);
            fb0 = fetch_b(sb0, k0 + BK);
        }
        for (var kk = 0u; kk < BK; kk++) {
            let ao = kk * AW + ty;
            let bo = kk * BW + tx;
            let a0 = As[ao];
            let a1 = As[ao + WG_Y];
            let a2 = As[ao + 2u * WG_Y];
            let a3 = As[ao + 3u * WG_Y];
            let b0 = Bs[bo];
            let b1 = Bs[bo + WG_X];
            rank1(&acc0, a0, b0, b1);
            rank1(&acc1, a1, b0, b1);
            rank1(&acc2, a2, b0, b1);
            rank1(&acc3, a3, b0, b1);
        }
        workgroupBarrier();
    }

    let c_base = p.c_off + batch * p.c_bs;
    let col = col0 + 4u * tx;
    store_quad(&acc0, c_base, row0 + 4u * ty, col);
    store_quad(&acc1, c_base, row0 + 4u * (ty + WG_Y), col);
    store_quad(&acc2, c_base, row0 + 4u * (ty + 2u * WG_Y), col);
    store_quad(&acc3, c_base, row0 + 4u * (ty + 3u * WG_Y), col);
}

fn store_one(c_base: u32, gr: u32, gc: u32, value: f32) {
    if gr >= p.m || gc >= p.n { return; }
    var v = p.alpha * value;
    if (p.flags & 1u) != 0u { v += f32(bias[p.bias_off + gc]); }
    let idx = c_base + gr * p.c_rs + gc;
    if (p.flags & 2u) != 0u { v += f32(c[idx]); }
    c[idx] = act(v);
}

fn store4(c_base: u32, gr: u32, gc: u32, v: vec4<f32>) {
    store_one(c_base, gr, gc, v.x);
    store_one(c_base, gr, gc + 1u, v.y);
    store_one(c_base, gr, gc + 2u, v.z);
    store_one(c_base, gr, gc + 3u, v.w);
}

// Rows r..r+3, column quads at col and col + 4 * WG_X.
fn store_quad(acc: ptr<function, Quad>, c_base: u32, r: u32, col: u32) {
    let col1 = col + 4u * WG_X;
    store4(c_base, r, col, (*acc)[0]);
    store4(c_base, r, col1, (*acc)[1]);
    store4(c_base, r + 1u, col, (*acc)[2]);
    store4(c_base, r + 1u, col1, (*acc)[3]);
    store4(c_base, r + 2u, col, (*acc)[4]);
    store4(c_base, r + 2u, col1, (*acc)[5]);
    store4(c_base, r + 3u, col, (*acc)[6]);
    store4(c_base, r + 3u, col1, (*acc)[7]);
}
