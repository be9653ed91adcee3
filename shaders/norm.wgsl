// BatchNorm2d over NCHW: statistics per channel over its N·H·W elements. Reductions run one
// workgroup per channel with a fixed-order tree in workgroup memory (no float atomics), so
// results never depend on scheduling. Elementwise entries use one invocation per element over
// a grid split across x and y, folding y back into the index.

struct Params {
    n: u32,        // images (bn_update_running: N·H·W, with hw = 1)
    c: u32,        // channels
    hw: u32,       // elements per channel plane
    affine: u32,   // 1: gamma (and beta) are bound; 0: gamma = 1, beta = 0
    eps: f32,
    momentum: f32,
}

@group(0) @binding(0) var<uniform> p: Params;


fn total() -> u32 {
    return p.n * p.c * p.hw;
}

// Flat index of element m (of N·H·W, image-major) of channel c.
fn at(c: u32, m: u32) -> u32 {
    let img = m / p.hw;
    return (img * p.c + c) * p.hw + (m - img * p.hw);
}

fn channel_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

fn invstd(v: f32) -> f32 {
    return 1.0 / sqrt(v + p.eps);
}

// ---- bn_stats: x -> mean, biased var (one workgroup per channel)
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read_write> stat_mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> stat_var: array<f32>;

// Two passes over the channel (mean, then the centred sum of squares): E[x²]−E[x]² loses all
// precision in f32 when |mean| ≫ std.
@compute @workgroup_size(256)
fn bn_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let c = channel_of(wid, nwg);
    let count = select(0u, p.n * p.hw, c < p.c);
    let len = total();
    let k = f32(max(count, 1u));
    var acc = 0.0;
    for (var m = lid; m < count; m += WG) {
        let i = at(c, m);
        if i < len { acc += f32(x[i]); }
    }
    let mu = tree_sum(lid, acc) / k;
    var acc2 = 0.0;
    for (var m = lid; m < count; m += WG) {
        let i = at(c, m);
        if i < len {
            let d = f32(x[i]) - mu;
            acc2 += d * d;
        }
    }
    let v = tree_sum(lid, acc2) / k;
    if lid == 0u && c < p.c {
        stat_mean[c] = mu;
        stat_var[c] = v;
    }
}

// ---- bn_update_running: mean, var -> running_mean, running_var in place (one per channel)
@group(0) @binding(1) var<storage, read> upd_mean: array<f32>;
@group(0) @binding(2) var<storage, read> upd_var: array<f32>;
@group(0) @binding(3) var<storage, read_write> run_mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> run_var: array<f32>;

// PyTorch tracks the unbiased variance; with a single value per channel the biased (zero)
// variance is kept rather than dividing by zero.
@compute @workgroup_size(256)
fn bn_update_running(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = flat(gid, nwg);
    if c >= p.c { return; }
    let count = p.n * p.hw;
    var unbias = 1.0;
    if count > 1u { unbias = f32(count) / f32(count - 1u); }
    let keep = 1.0 - p.momentum;
    run_mean[c] = keep * run_mean[c] + p.momentum * upd_mean[c];
    run_var[c] = keep * run_var[c] + p.momentum * (upd_var[c] * unbias);
}

// ---- bn_forward: x, mean, var, gamma, beta -> y (one invocation per element)
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> variance: array<f32>;
@group(0) @binding(4) var<storage, read> gamma: array<f32>;
@group(0) @binding(5) var<storage, read> beta: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<act>;

// Without affine parameters gamma is bound to a stand-in buffer that must not be read.
fn gamma_of(c: u32) -> f32 {
    var g = 1.0;
    if p.affine != 0u { g = gamma[c]; }
    return g;
}

@compute @workgroup_size(256)
fn bn_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= total() { return; }
    let c = (i / p.hw) % p.c;
    var b = 0.0;
    if p.affine != 0u { b = beta[c]; }
    y[i] = act((f32(x[i]) - mean[c]) * (invstd(variance[c]) * gamma_of(c)) + b);
}

// ---- bn_backward_reduce: x, mean, var, dy -> dgamma = Σ dy·x̂, dbeta = Σ dy (per channel)
@group(0) @binding(4) var<storage, read> red_dy: array<act>;
@group(0) @binding(5) var<storage, read_write> red_dgamma: array<f32>;
@group(0) @binding(6) var<storage, read_write> red_dbeta: array<f32>;

// One pass: Σ dy·x̂ = invstd·Σ dy·(x − mean), and both sums share one tree.
@compute @workgroup_size(256)
fn bn_backward_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let c = channel_of(wid, nwg);
    let valid = c < p.c;
    let count = select(0u, p.n * p.hw, valid);
    let len = total();
    var mu = 0.0;
    if valid { mu = mean[c]; }
    var acc = vec2(0.0, 0.0);
    for (var m = lid; m < count; m += WG) {
        let i = at(c, m);
        if i < len {
            let g = f32(red_dy[i]);
            acc += vec2(g, g * (f32(x[i]) - mu));
        }
    }
    let s = tree_sum2(lid, acc);
    if lid == 0u && valid {
        red_dbeta[c] = s.x;
        red_dgamma[c] = s.y * invstd(variance[c]);
    }
}

// ---- bn_backward_input: x, mean, var, gamma, dy, dgamma, dbeta -> dx (training mode)
@group(0) @binding(5) var<storage, read> bwd_dy: array<act>;
@group(0) @binding(6) var<storage, read> bwd_dgamma: array<f32>;
@group(0) @binding(7) var<storage, read> bwd_dbeta: array<f32>;
@group(0) @binding(8) var<storage, read_write> bwd_dx: array<act>;

// dx = γ·invstd·(dy − dβ/n − x̂·dγ/n): the batch mean and variance depend on every x.
@compute @workgroup_size(256)
fn bn_backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= total() { return; }
    let c = (i / p.hw) % p.c;
    let k = f32(max(p.n * p.hw, 1u));
    let is = invstd(variance[c]);
    let xhat = (f32(x[i]) - mean[c]) * is;
    bwd_dx[i] = act(gamma_of(c) * is * (f32(bwd_dy[i]) - bwd_dbeta[c] / k - xhat * (bwd_dgamma[c] / k)));
}

// ---- bn_backward_input_eval: dy, var, gamma -> dx (evaluation mode: statistics are constants)
@group(0) @binding(1) var<storage, read> ev_dy: array<act>;
@group(0) @binding(2) var<storage, read> ev_var: array<f32>;
@group(0) @binding(3) var<storage, read> ev_gamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> ev_dx: array<act>;

@compute @workgroup_size(256)
fn bn_backward_input_eval(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= total() { return; }
    let c = (i / p.hw) % p.c;
    var g = 1.0;
    if p.affine != 0u { g = ev_gamma[c]; }
    ev_dx[i] = act(f32(ev_dy[i]) * (g * invstd(ev_var[c])));
}
