// AutoReP's gated activation site, and everything around it:
//   y = m ⊙ ReLU(x) + (1 − m) ⊙ P_c(x),   P_c(x) = s2·c2[c]·x² + s1·c1[c]·x + c0[c]
// x is [B, C, H, W]; the mask m has one gate per pixel (C·H·W gates, shared across the batch)
// or per channel (C gates of H·W pixels each); coefficients are per channel, stored
// [c0 | c1 | c2] in one buffer of 3C. The mask is f32 so the same kernels run AutoReP's
// binary mask, SNL's continuous α, and the identity ablation (c = (0, 1, 0), s2 = 0).

struct Params {
    n: u32,        // B·C·H·W elements
    chw: u32,      // C·H·W elements per image
    hw: u32,       // H·W elements per channel plane
    group: u32,    // elements per gate inside one image: 1 (pixel-wise) or H·W (channel-wise)
    batch: u32,
    channels: u32,
    gates: u32,    // C·H·W / group
    budget: u32,   // ReLU budget B (gate_grad_h)
    s1: f32,
    s2: f32,
    penalty: f32,  // gate_grad_h: λ/N per counted ReLU; SNL: the L1 weight λ₁
    tau: f32,      // hysteresis threshold; gate_count: the "kept" threshold
    mode: u32,     // gate_grad_h: 0 = AutoReP STE, 1 = SNL (α trained directly, L1 penalty)
    weight: u32,   // ReLUs a kept gate stands for: 1 (pixel) or H·W (channel)
    clip2: f32,    // c2 is clamped to ±clip2 wherever it is used (0: no clamp)
}

@group(0) @binding(0) var<uniform> p: Params;

// ---- forward and input gradient: x, mask, coef, (g), out
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read> coef: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<act>;

@compute @workgroup_size(256)
fn gate_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= p.n { return; }
    let j = i % p.chw;
    let m = mask[j / p.group];
    let v = f32(x[i]);
    y[i] = act(gate_value(m, v, j / p.hw, p.channels));
}

@group(0) @binding(4) var<storage, read> g: array<act>;
@group(0) @binding(5) var<storage, read_write> dx: array<act>;

@compute @workgroup_size(256)
fn gate_grad_x(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= p.n { return; }
    let j = i % p.chw;
    let c = j / p.hw;
    let m = mask[j / p.group];
    dx[i] = act(f32(g[i]) * gate_slope(m, f32(x[i]), c, p.channels));
}

// dm[gate] = Σ over the batch (and the gate's pixels) of g·(ReLU(x) − P(x)); one invocation per
// gate, summing in a fixed order.
@group(0) @binding(5) var<storage, read_write> dm: array<f32>;

@compute @workgroup_size(256)
fn gate_grad_mask(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let gate = flat(gid, nwg);
    if gate >= p.gates { return; }
    var acc = 0.0;
    for (var b = 0u; b < p.batch; b++) {
        for (var e = 0u; e < p.group; e++) {
            let j = gate * p.group + e;
            let i = b * p.chw + j;
            acc += f32(g[i]) * gate_gap(f32(x[i]), j / p.hw, p.channels);
        }
    }
    dm[gate] = acc;
}

// Per channel: dc0 = Σ g(1−m), dc1 = Σ g(1−m)·s1·x, dc2 = Σ g(1−m)·s2·x² (0 where c2 is
// clamped); one workgroup per
// channel with a fixed-order tree.
@group(0) @binding(5) var<storage, read_write> dcoef: array<f32>;
var<workgroup> part0: array<f32, 256>;
var<workgroup> part1: array<f32, 256>;
var<workgroup> part2: array<f32, 256>;

@compute @workgroup_size(256)
fn gate_grad_coef(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wid.x;
    var a0 = 0.0;
    var a1 = 0.0;
    var a2 = 0.0;
    let per_channel = p.batch * p.hw;
    for (var t = lid; t < per_channel; t += 256u) {
        let b = t / p.hw;
        let j = c * p.hw + t % p.hw;
        let i = b * p.chw + j;
        let v = f32(x[i]);
        let w = f32(g[i]) * (1.0 - mask[j / p.group]);
        a0 += w;
        a1 += w * v;
        a2 += w * v * v;
    }
    part0[lid] = a0;
    part1[lid] = a1;
    part2[lid] = a2;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if lid < s {
            part0[lid] += part0[lid + s];
            part1[lid] += part1[lid + s];
            part2[lid] += part2[lid + s];
        }
        workgroupBarrier();
    }
    if lid == 0u && c < p.channels {
        dcoef[c] = part0[0];
        dcoef[p.channels + c] = p.s1 * part1[0];
        let free = gate_c2_free(c, p.channels);
        dcoef[2u * p.channels + c] = select(0.0, p.s2 * part2[0], free);
    }
}

// ---- the gate parameter's gradient: h (or α), dm, count → dh
@group(0) @binding(1) var<storage, read> h: array<f32>;
@group(0) @binding(2) var<storage, read> dmask: array<f32>;
@group(0) @binding(3) var<storage, read> count_in: array<u32>;
@group(0) @binding(4) var<storage, read_write> dh: array<f32>;
// The gradient backward started from (the loss scale under mixed precision, else 1): dm
// arrives multiplied by it, so the penalty terms, which are not part of the loss graph, are
// too, and the optimizer's unscaling treats them alike.
@group(0) @binding(5) var<storage, read> loss_scale: array<f32>;

fn softplus(v: f32) -> f32 {
    // PyTorch's softplus is linear above 20 (and exp would overflow far above it).
    if v > 20.0 { return v; }
    return log(1.0 + exp(v));
}

// AutoReP: the STE passes softplus(h) (the function itself, not its derivative) times dL/dm,
// where dL/dm includes the budget hinge λ/N·1[count > B] per ReLU the gate stands for.
// SNL: α is trained directly with an L1 penalty λ₁·Σ|α|.
@compute @workgroup_size(256)
fn gate_grad_h(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= p.gates { return; }
    if p.mode == 0u {
        var pen = 0.0;
        if count_in[0] > p.budget { pen = p.penalty * f32(p.weight) * loss_scale[0]; }
        dh[i] = softplus(h[i]) * (dmask[i] + pen);
    } else {
        dh[i] = dmask[i] + p.penalty * loss_scale[0] * sign(h[i]);
    }
}

// ---- hysteresis: an ON gate turns OFF only when h ≤ −τ, an OFF gate turns ON only when h > τ.
@group(0) @binding(2) var<storage, read_write> mask_rw: array<f32>;

@compute @workgroup_size(256)
fn gate_hysteresis(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= p.gates { return; }
    let m = mask_rw[i];
    let on = select(0.0, 1.0, h[i] > -p.tau);
    let off_to_on = select(0.0, 1.0, h[i] > p.tau);
    mask_rw[i] = m * on + (1.0 - m) * off_to_on;
}

// ---- exact ReLU count: count += weight · #{gates with mask > tau}. Integer adds are
// associative, so atomics keep the result exact and deterministic at any gate count.
@group(0) @binding(1) var<storage, read> mask_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> count: array<atomic<u32>>;
var<workgroup> wg_count: atomic<u32>;

@compute @workgroup_size(256)
fn gate_count(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    if lid == 0u { atomicStore(&wg_count, 0u); }
    workgroupBarrier();
    let i = flat(gid, nwg);
    if i < p.gates && mask_in[i] > p.tau { atomicAdd(&wg_count, p.weight); }
    workgroupBarrier();
    if lid == 0u {
        let total = atomicLoad(&wg_count);
        if total > 0u { atomicAdd(&count[0], total); }
    }
}

@group(0) @binding(1) var<storage, read_write> count_rw: array<u32>;

@compute @workgroup_size(1)
fn count_reset() {
    count_rw[0] = 0u;
}
