// The prelude: composed in front of every module in shaders/ (kernels/src/shaders.rs), since
// WGSL has no includes. What is here is defined nowhere else.

// Invocations per workgroup of the one-dimensional kernels; launch::Kernel::groups_for sizes
// their grids from the same number (tests/contract.rs checks each entry point's size).
const WG: u32 = 256u;

// The flat invocation index of a one-dimensional kernel whose grid is split over x and y
// (a dispatch has at most 65,535 workgroups per dimension).
fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

// σ(v) (elementwise.wgsl's SiLU and sigmoid, bn_act.wgsl's SiLU site).
fn sigmoid_of(v: f32) -> f32 {
    // exp of a negative argument only: no overflow for large |v|.
    let e = exp(-abs(v));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}

// ---- fixed-order tree sums in workgroup memory: no float atomics, so a result never depends
// on scheduling.
var<workgroup> tree: array<vec2<f32>, WG>;

// Workgroup-wide sum of two values; every invocation of a WG-wide workgroup must call it
// (uniform control flow), and all get the total. The trailing barrier lets the caller call it
// again at once.
fn tree_sum2(lid: u32, v: vec2<f32>) -> vec2<f32> {
    tree[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if lid < s { tree[lid] += tree[lid + s]; }
        workgroupBarrier();
    }
    let sum = tree[0];
    workgroupBarrier();
    return sum;
}

fn tree_sum(lid: u32, v: f32) -> f32 {
    return tree_sum2(lid, vec2(v, 0.0)).x;
}

// ---- per-channel reductions split over several workgroups per channel (norm.wgsl, bn_act.wgsl):
// one workgroup per channel leaves most of a large GPU idle when a channel holds N·H·W = 10⁵
// elements, so workgroup w reduces part j = w % split of channel c = w / split, the elements
// [lo, hi) of the channel's `count`, and writes partial results that a `*_finish` entry point
// combines per channel in the order of j (deterministic, like the trees).
struct ChannelPart {
    c: u32,
    j: u32,
    lo: u32,
    hi: u32,
}

fn channel_part(w: u32, count: u32, split: u32) -> ChannelPart {
    let chunk = (count + split - 1u) / split;
    let j = w % split;
    let lo = min(j * chunk, count);
    return ChannelPart(w / split, j, lo, min(lo + chunk, count));
}

// The flat workgroup index of a reduction whose grid is split over x and y.
fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// ---- the register tile of the GEMM-shaped kernels (gemm.wgsl, conv.wgsl)

// A quad of rows: acc[2r + j] holds row r of the quad times column quad j.
alias Quad = array<vec4<f32>, 8>;

// acc += av ⊗ [b0 b1]: one rank-1 update of a 4×8 block.
fn rank1(acc: ptr<function, Quad>, av: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>) {
    (*acc)[0] = fma(vec4<f32>(av.x), b0, (*acc)[0]);
    (*acc)[1] = fma(vec4<f32>(av.x), b1, (*acc)[1]);
    (*acc)[2] = fma(vec4<f32>(av.y), b0, (*acc)[2]);
    (*acc)[3] = fma(vec4<f32>(av.y), b1, (*acc)[3]);
    (*acc)[4] = fma(vec4<f32>(av.z), b0, (*acc)[4]);
    (*acc)[5] = fma(vec4<f32>(av.z), b1, (*acc)[5]);
    (*acc)[6] = fma(vec4<f32>(av.w), b0, (*acc)[6]);
    (*acc)[7] = fma(vec4<f32>(av.w), b1, (*acc)[7]);
}

// ---- the modules
