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

// PyTorch SGD without a momentum buffer (momentum == 0).
@compute @workgroup_size(256)
fn sgd_step_plain(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= p.n { return; }
    let w = param[i];
    let g = grad[i] * p.grad_scale + p.weight_decay * w;
    param[i] = w - p.lr * g;
}

// PyTorch SGD with momentum (optionally Nesterov).
@compute @workgroup_size(256)
fn sgd_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= p.n { return; }
    let w = param[i];
    var g = grad[i] * p.grad_scale + p.weight_decay * w;
    var buf = g;
    if !has(FIRST) {
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

// PyTorch Adam / AdamW (amsgrad off), with PyTorch's evaluation order of the denominator.
@compute @workgroup_size(256)
fn adam_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= p.n { return; }
    var w = param[i];
    var g = grad[i] * p.grad_scale;
    if has(DECOUPLED) {
        w = w * (1.0 - p.lr * p.weight_decay);
    } else {
        g = g + p.weight_decay * w;
    }
    let m = p.beta1 * state0[i] + (1.0 - p.beta1) * g;
    let v = p.beta2 * state1[i] + (1.0 - p.beta2) * g * g;
    state0[i] = m;
    state1[i] = v;
    let denom = sqrt(v) / sqrt(p.bc2) + p.eps;
    param[i] = w - (p.lr / p.bc1) * (m / denom);
}

// ---- lookahead: bindings fast, slow
@group(0) @binding(1) var<storage, read_write> fast: array<f32>;
@group(0) @binding(2) var<storage, read_write> slow: array<f32>;

// slow += alpha * (fast - slow); fast = slow
@compute @workgroup_size(256)
fn lookahead_sync(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= p.n { return; }
    let s = slow[i] + p.alpha * (fast[i] - slow[i]);
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
