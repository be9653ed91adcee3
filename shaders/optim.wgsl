// Optimizer updates over a whole parameter group at once: params, grads and every state
// tensor are flat buffers holding the group's tensors back to back, so one dispatch per group
// replaces one per tensor. One invocation per element; the grid may be split over x and y.
// Step-dependent scalars (bias corrections, the clipping scale) arrive precomputed from the host
// so that a step never reads device state back.

struct Params {
    n: u32,
    flags: u32,          // FIRST | NESTEROV | DECOUPLED
    len: u32,            // sum_squares_rows: chunk length per workgroup
    _pad: u32,
    lr: f32,
    weight_decay: f32,
    grad_scale: f32,     // global grad-norm clipping factor (1 when not clipping)
    momentum: f32,       // sgd
    dampening: f32,      // sgd
    beta1: f32,          // adam
    beta2: f32,          // adam
    eps: f32,            // adam
    bc1: f32,            // adam: 1 - beta1^t
    bc2: f32,            // adam: 1 - beta2^t
    alpha: f32,          // lookahead: slow-weight step size
    ln_beta1: f32,       // adam under a loss scaler: ln β1, ln β2 (from the host, in f64)
    ln_beta2: f32,
}

// The first SGD step seeds the momentum buffer with the gradient itself (no dampening).
const FIRST: u32 = 1u;
const NESTEROV: u32 = 2u;
// AdamW: decay the weights directly instead of adding wd*p to the gradient.
const DECOUPLED: u32 = 4u;

@group(0) @binding(0) var<uniform> p: Params;

fn has(flag: u32) -> bool {
    return (p.flags & flag) != 0u;
}

// ---- updates: bindings grad, param, then the state buffers
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read_write> state0: array<f32>;   // sgd: momentum; adam: m
@group(0) @binding(4) var<storage, read_write> state1: array<f32>;   // adam: v

// ---- dynamic loss scaling (mixed precision), all on the device: the loss gradient enters
// backward multiplied by `scale`, so every parameter gradient arrives scaled. `amp` holds
// [scale, 1/scale, found (1: an inf/NaN gradient this step), clean steps since the last
// change]; the updates read it at the binding after their own and skip the whole step when
// found is set (no host round trip). Under a scaler (ON = 1) the steps actually applied are
// counted there too (APPLIED), and the first-step flag, Adam's bias corrections and
// Lookahead's period follow that count, as PyTorch's do when GradScaler skips
// `optimizer.step()`; the host's count would include the skipped steps. Without a scaler
// the updates get [1, 1, 0, 0, 0, 0] and use the host's values.
const AMP_SCALE: u32 = 0u;
const AMP_INV: u32 = 1u;
const AMP_FOUND: u32 = 2u;
const AMP_CLEAN: u32 = 3u;
const AMP_APPLIED: u32 = 4u;
const AMP_ON: u32 = 5u;
@group(0) @binding(3) var<storage, read> amp_plain: array<f32>;   // sgd_step_plain
@group(0) @binding(4) var<storage, read> amp_sgd: array<f32>;     // sgd_step
@group(0) @binding(5) var<storage, read> amp_adam: array<f32>;    // adam_step

// PyTorch SGD without a momentum buffer (momentum == 0).
@compute @workgroup_size(256)
fn sgd_step_plain(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= p.n || amp_plain[AMP_FOUND] != 0.0 { return; }
    let w = param[i];
    let g = grad[i] * (p.grad_scale * amp_plain[AMP_INV]) + p.weight_decay * w;
    param[i] = w - p.lr * g;
}

// PyTorch SGD with momentum (optionally Nesterov).
@compute @workgroup_size(256)
fn sgd_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= p.n || amp_sgd[AMP_FOUND] != 0.0 { return; }
    let w = param[i];
    var g = grad[i] * (p.grad_scale * amp_sgd[AMP_INV]) + p.weight_decay * w;
    var buf = g;
    let first = select(has(FIRST), amp_sgd[AMP_APPLIED] == 0.0, amp_sgd[AMP_ON] != 0.0);
    if !first {
        buf = p.momentum * state0[i] + (1.0 - p.dampening) * g;
    }
    state0[i] = buf;
    if has(NESTEROV) {
        g = g + p.momentum * buf;
    } else {
        g = buf;
    }
    param[i] = w - p.lr * g;
}

// 1 − β^t without cancellation: −expm1(t·ln β), by its Taylor series while t·ln β is small.
// (1 − pow(β, t) in f32 keeps only a few correct bits for β = 0.999 and small t, and so does
// log(β) near 1 on some drivers: ln β comes from the host.)
fn one_minus_pow(ln_beta: f32, t: f32) -> f32 {
    let x = t * ln_beta;
    if x > -0.1 {
        let series = 1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0 + x / 720.0))));
        return -x * series;
    }
    return 1.0 - exp(x);
}

// PyTorch Adam / AdamW (amsgrad off), with PyTorch's evaluation order of the denominator.
@compute @workgroup_size(256)
fn adam_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= p.n || amp_adam[AMP_FOUND] != 0.0 { return; }
    var w = param[i];
    var g = grad[i] * (p.grad_scale * amp_adam[AMP_INV]);
    if has(DECOUPLED) {
        w = w * (1.0 - p.lr * p.weight_decay);
    } else {
        g = g + p.weight_decay * w;
    }
    let m = p.beta1 * state0[i] + (1.0 - p.beta1) * g;
    let v = p.beta2 * state1[i] + (1.0 - p.beta2) * g * g;
    state0[i] = m;
    state1[i] = v;
    var bc1 = p.bc1;
    var bc2 = p.bc2;
    if amp_adam[AMP_ON] != 0.0 {
        let t = amp_adam[AMP_APPLIED] + 1.0;
        bc1 = one_minus_pow(p.ln_beta1, t);
        bc2 = one_minus_pow(p.ln_beta2, t);
    }
    let denom = sqrt(v) / sqrt(bc2) + p.eps;
    param[i] = w - (p.lr / bc1) * (m / denom);
}

// ---- lookahead: bindings fast, slow, amp (a skipped step is not a step: no sync either)
@group(0) @binding(1) var<storage, read_write> fast: array<f32>;
@group(0) @binding(2) var<storage, read_write> slow: array<f32>;
@group(0) @binding(3) var<storage, read> amp_la: array<f32>;

// slow += alpha * (fast - slow); fast = slow
@compute @workgroup_size(256)
fn lookahead_sync(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= p.n || amp_la[AMP_FOUND] != 0.0 { return; }
    // Under a scaler the host dispatches this every step and the period (p.len) is checked
    // against the applied steps, this one included; the first sync only starts the slow
    // weights at the fast ones (alpha 1; without a scaler the host passes it).
    var alpha = p.alpha;
    if amp_la[AMP_ON] != 0.0 {
        let t = u32(amp_la[AMP_APPLIED]) + 1u;
        if t % max(p.len, 1u) != 0u { return; }
        if t == max(p.len, 1u) { alpha = 1.0; }
    }
    // alpha 1 copies exactly (slow + (fast - slow) need not round to fast).
    let s = select(slow[i] + alpha * (fast[i] - slow[i]), fast[i], alpha == 1.0);
    slow[i] = s;
    fast[i] = s;
}

// ---- first pass of the squared gradient norm: bindings x, partial sums
@group(0) @binding(1) var<storage, read> sq_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> sq_out: array<f32>;

// sq_out[row] = sum of x^2 over the row's chunk of p.len elements; one workgroup per row, a
// fixed-order tree so the result never depends on scheduling. launch::sum_rows finishes it.
@compute @workgroup_size(256)
fn sum_squares_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let row = wid.x + wid.y * nwg.x;
    let start = row * p.len;
    let end = min(start + p.len, p.n);
    var acc = 0.0;
    for (var i = start + lid; i < end; i += WG) {
        let v = sq_in[i];
        acc += v * v;
    }
    let sum = tree_sum(lid, acc);
    if lid == 0u && start < p.n { sq_out[row] = sum; }
}

// ---- loss scaler: bindings grads (read), amp (read_write)
@group(0) @binding(1) var<storage, read> scaled_grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> amp_check: array<f32>;

// found = 1 if any of the group's n gradients is inf or NaN. Every invocation that finds one
// writes the same 1.0, so the order of the writes cannot matter.
@compute @workgroup_size(256)
fn amp_check_finite(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= p.n { return; }
    // inf and NaN are the values whose exponent bits are all ones. Tested on the bits: WGSL
    // has no isinf/isnan, and drivers may fold float tests like v - v == 0 to true.
    let exponent = bitcast<u32>(scaled_grad[i]) & 0x7f800000u;
    if exponent == 0x7f800000u { amp_check[AMP_FOUND] = 1.0; }
}

@group(0) @binding(1) var<storage, read_write> amp_rw: array<f32>;

// The largest scale that grows: 2^125, so that the scale stays at most 2^126 and its inverse a
// normal f32 (a GPU that flushes subnormals would unscale every gradient to 0).
const AMP_MAX_GROWABLE: f32 = 4.2535296e37;

// After the updates: halve the scale on an overflow (the step was skipped), double it after
// p.len clean steps in a row (PyTorch's GradScaler: growth interval 2000, factors 2 and 1/2),
// then clear the flag for the next step. One invocation.
@compute @workgroup_size(1)
fn amp_update() {
    var scale = amp_rw[AMP_SCALE];
    var clean = amp_rw[AMP_CLEAN];
    if amp_rw[AMP_FOUND] == 0.0 { amp_rw[AMP_APPLIED] = amp_rw[AMP_APPLIED] + 1.0; }
    if amp_rw[AMP_FOUND] != 0.0 {
        scale = scale * 0.5;
        clean = 0.0;
    } else {
        clean = clean + 1.0;
        if clean >= f32(p.len) {
            // As GradScaler: a growth that would overflow keeps the scale (an infinite one
            // would make every later gradient NaN and every step a skip).
            if scale <= AMP_MAX_GROWABLE { scale = scale * 2.0; }
            clean = 0.0;
        }
    }
    amp_rw[AMP_SCALE] = scale;
    amp_rw[AMP_INV] = 1.0 / scale;
    amp_rw[AMP_FOUND] = 0.0;
    amp_rw[AMP_CLEAN] = clean;
}
