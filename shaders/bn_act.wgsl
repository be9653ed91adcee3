// BatchNorm2d, an optional residual add and the activation site after it (ReLU, SiLU or
// AutoReP's gate) as one pass over the activations:
//   s = (x − μ)·γ·invstd + β (+ r),   z = act(s)
// The site's input s is never stored: the backward kernels recompute it from x (and r), one
// multiply-add per element instead of a tensor written once and read three times, and a
// training step holds two activation tensors fewer per site.
//
// Per-channel constants are folded once per call (bn_fold) into fold = [γ·invstd | β | μ | invstd]
// (4C), so that no entry point binds more than eight storage buffers.

struct Params {
    n: u32,        // images
    c: u32,        // channels
    hw: u32,       // pixels per channel plane
    flags: u32,    // RESIDUAL | TRAIN | WRITE_DY
    act: u32,      // ACT_RELU, ACT_SILU or ACT_GATE
    group: u32,    // gate: pixels per gate inside one image (1, or hw for channel-wise gates)
    stride: u32,   // sums: elements between the dβ, dγ and dcoef sections (C rounded up to 64)
    gates: u32,    // gate: C·hw / group
    eps: f32,
    s1: f32,
    s2: f32,
    clip2: f32,    // gate: c2 clamped to ±clip2 (0: no clamp)
    split: u32,    // the reductions: workgroups per channel (see channel_part in the prelude)
    parts: u32,    // backward_reduce: where the partial sums start in `sums`
}

const RESIDUAL: u32 = 1u;  // r is bound and added before the activation
const TRAIN: u32 = 2u;     // batch statistics (the input gradient has the batch terms)
const WRITE_DY: u32 = 4u;  // backward_reduce also stores dL/ds (the residual's gradient)

const ACT_RELU: u32 = 0u;
const ACT_SILU: u32 = 1u;
const ACT_GATE: u32 = 2u;

@group(0) @binding(0) var<uniform> p: Params;

// ---- bn_fold: mean, var, gamma, beta -> fold (one invocation per channel)
@group(0) @binding(1) var<storage, read> fold_mean: array<f32>;
@group(0) @binding(2) var<storage, read> fold_var: array<f32>;
@group(0) @binding(3) var<storage, read> fold_gamma: array<f32>;
@group(0) @binding(4) var<storage, read> fold_beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> fold_out: array<f32>;

@compute @workgroup_size(256)
fn bn_fold(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = flat(gid, nwg);
    if c >= p.c { return; }
    let is = 1.0 / sqrt(fold_var[c] + p.eps);
    fold_out[c] = fold_gamma[c] * is;
    fold_out[p.c + c] = fold_beta[c];
    fold_out[2u * p.c + c] = fold_mean[c];
    fold_out[3u * p.c + c] = is;
}

// ---- the operands every other entry point shares
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read> r: array<act>;      // x stands in without RESIDUAL
@group(0) @binding(3) var<storage, read> fold: array<f32>;
@group(0) @binding(4) var<storage, read> mask: array<f32>;   // fold stands in without a gate
@group(0) @binding(5) var<storage, read> coef: array<f32>;   // [c0 | c1 | c2]; likewise

// x̂ = (x − μ)·invstd, from the stored x.
fn xhat(i: u32, c: u32) -> f32 {
    return (f32(x[i]) - fold[2u * p.c + c]) * fold[3u * p.c + c];
}

// The site's input s = (x − μ)·γ·invstd + β (+ r); (x − μ) first, as bn_forward, since folding
// μ into the shift cancels when |μ|·γ·invstd ≫ |β|.
fn site_input(i: u32, c: u32) -> f32 {
    var s = (f32(x[i]) - fold[2u * p.c + c]) * fold[c] + fold[p.c + c];
    if (p.flags & RESIDUAL) != 0u {
        s += f32(r[i]);
    }
    return s;
}

// The gate of element i (pixel-wise: one per C·H·W position, shared across the batch).
fn gate_of(i: u32) -> u32 {
    return (i % (p.c * p.hw)) / p.group;
}

fn activate(s: f32, i: u32, c: u32) -> f32 {
    switch p.act {
        case ACT_SILU: { return s * sigmoid_of(s); }
        case ACT_GATE: { return gate_value(mask[gate_of(i)], s, c, p.c); }
        default: { return max(s, 0.0); }
    }
}

// dL/ds given dL/dz = g.
fn activate_grad(g: f32, s: f32, i: u32, c: u32) -> f32 {
    switch p.act {
        case ACT_SILU: {
            let sg = sigmoid_of(s);
            return g * sg * (1.0 + s * (1.0 - sg));
        }
        case ACT_GATE: { return g * gate_slope(mask[gate_of(i)], s, c, p.c); }
        default: { return g * select(0.0, 1.0, s > 0.0); }
    }
}

// ---- bn_act_forward: x, r, fold, mask, coef -> z (one invocation per element)
@group(0) @binding(6) var<storage, read_write> z: array<act>;

@compute @workgroup_size(256)
fn bn_act_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= total() { return; }
    let c = channel(i);
    z[i] = act(activate(site_input(i, c), i, c));
}

// ---- bn_act_stats: per-channel mean and biased variance of s (AutoReP's DaPa statistics of
// the site's input): per part (mean, Σ(s − mean)²), two passes as bn_stats, then norm.wgsl's
// bn_stats_finish combines the parts per channel (Chan et al.).
@group(0) @binding(6) var<storage, read_write> site_part: array<vec2<f32>>;

@compute @workgroup_size(256)
fn bn_act_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let part = my_part(wid, nwg);
    let c = part.c;
    let k = f32(max(part.hi - part.lo, 1u));
    var acc = 0.0;
    for (var m = part.lo + lid; m < part.hi; m += WG) {
        acc += site_input(at(c, m), c);
    }
    let mu = tree_sum(lid, acc) / k;
    var acc2 = 0.0;
    for (var m = part.lo + lid; m < part.hi; m += WG) {
        let d = site_input(at(c, m), c) - mu;
        acc2 += d * d;
    }
    let m2 = tree_sum(lid, acc2);
    if lid == 0u && c < p.c {
        site_part[c * p.split + part.j] = vec2(mu, m2);
    }
}

// ---- bn_act_backward_reduce: x, r, fold, mask, coef, g -> sums (and dy): per channel
//   dβ = Σ dy,  dγ = Σ dy·x̂,  with dy = dL/ds = g·act'(s),
//   gate: dc0 = Σ g(1−m), dc1 = s1·Σ g(1−m)·s, dc2 = s2·Σ g(1−m)·s² (0 where c2 is clamped),
// written to sums = [dβ | dγ | dcoef] at offsets 0, stride, 2·stride (so each section can be
// bound as a view of its own). Each part of a channel writes its five sums after them (from
// `parts`), and bn_act_backward_reduce_finish adds them up per channel in order.
@group(0) @binding(6) var<storage, read> g: array<act>;
@group(0) @binding(7) var<storage, read_write> sums: array<f32>;
@group(0) @binding(8) var<storage, read_write> dy_out: array<act>;

@compute @workgroup_size(256)
fn bn_act_backward_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) lid: u32) {
    let part = my_part(wid, nwg);
    let c = part.c;
    let gate = p.act == ACT_GATE;
    let write_dy = (p.flags & WRITE_DY) != 0u;
    var bn = vec2(0.0, 0.0);
    var w01 = vec2(0.0, 0.0);
    var w2 = 0.0;
    for (var m = part.lo + lid; m < part.hi; m += WG) {
        let i = at(c, m);
        let s = site_input(i, c);
        let gi = f32(g[i]);
        let d = activate_grad(gi, s, i, c);
        if write_dy { dy_out[i] = act(d); }
        bn += vec2(d, d * xhat(i, c));
        if gate {
            let w = gi * (1.0 - mask[gate_of(i)]);
            w01 += vec2(w, w * s);
            w2 += w * s * s;
        }
    }
    let sb = tree_sum2(lid, bn);
    let sw = tree_sum2(lid, w01);
    let sw2 = tree_sum(lid, w2);
    if lid == 0u && c < p.c {
        let at_part = p.parts + (c * p.split + part.j) * 5u;
        sums[at_part] = sb.x;
        sums[at_part + 1u] = sb.y;
        sums[at_part + 2u] = sw.x;
        sums[at_part + 3u] = sw.y;
        sums[at_part + 4u] = sw2;
    }
}

// The finishing pass binds only what it uses (the data the partial pass read may be f16).
@group(0) @binding(1) var<storage, read> fin_coef: array<f32>;
@group(0) @binding(2) var<storage, read_write> fin_sums: array<f32>;

@compute @workgroup_size(256)
fn bn_act_backward_reduce_finish(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = flat(gid, nwg);
    if c >= p.c { return; }
    var t = array<f32, 5>(0.0, 0.0, 0.0, 0.0, 0.0);
    for (var j = 0u; j < p.split; j++) {
        let at_part = p.parts + (c * p.split + j) * 5u;
        for (var k = 0u; k < 5u; k++) {
            t[k] += fin_sums[at_part + k];
        }
    }
    fin_sums[c] = t[0];
    fin_sums[p.stride + c] = t[1];
    if p.act == ACT_GATE {
        let base = 2u * p.stride;
        fin_sums[base + c] = t[2];
        fin_sums[base + p.c + c] = p.s1 * t[3];
        // A clamped c2 passes no gradient (the clamp's derivative), as torch.clamp.
        let raw = fin_coef[2u * p.c + c];
        let free = p.clip2 <= 0.0 || abs(raw) <= p.clip2;
        fin_sums[base + 2u * p.c + c] = select(0.0, p.s2 * t[4], free);
    }
}

// ---- bn_act_backward_input: x, r, fold, mask, coef, g, sums -> dx (one invocation per element)
//   training:   dx = γ·invstd·(dy − dβ/k − x̂·dγ/k),  k = N·H·W
//   evaluation: dx = γ·invstd·dy
// dy is recomputed from g and s (sites with a residual store it in backward_reduce instead and
// take bn_backward_input, since the residual needs it too).
@group(0) @binding(7) var<storage, read> sums_in: array<f32>;
@group(0) @binding(8) var<storage, read_write> dx: array<act>;

@compute @workgroup_size(256)
fn bn_act_backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= total() { return; }
    let c = channel(i);
    let d = activate_grad(f32(g[i]), site_input(i, c), i, c);
    var v = d;
    if (p.flags & TRAIN) != 0u {
        let k = f32(max(p.n * p.hw, 1u));
        v = d - sums_in[c] / k - xhat(i, c) * (sums_in[p.stride + c] / k);
    }
    dx[i] = act(fold[c] * v);
}

// ---- bn_act_grad_mask: x, r, fold, mask, coef, g -> dm, dm[gate] = Σ g·(ReLU(s) − P(s)) over
// the batch and the gate's pixels (one invocation per gate, in a fixed order)
@group(0) @binding(7) var<storage, read_write> dm: array<f32>;

@compute @workgroup_size(256)
fn bn_act_grad_mask(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let gt = flat(gid, nwg);
    if gt >= p.gates { return; }
    let chw = p.c * p.hw;
    var acc = 0.0;
    for (var b = 0u; b < p.n; b++) {
        for (var e = 0u; e < p.group; e++) {
            let j = gt * p.group + e;
            let i = b * chw + j;
            let c = j / p.hw;
            let s = site_input(i, c);
            acc += f32(g[i]) * gate_gap(s, c, p.c);
        }
    }
    dm[gt] = acc;
}
