// BatchNorm2d over NCHW: statistics per channel over its N·H·W elements. Reductions split each
// channel over workgroups, each a fixed-order tree in workgroup memory (no float atomics), and
// combine the parts per channel in order, so results never depend on scheduling. Elementwise entries use one invocation per element over
// a grid split across x and y, folding y back into the index.

struct Params {
    n: u32,        // images (bn_update_running: N·H·W, with hw = 1)
    c: u32,        // channels
    hw: u32,       // elements per channel plane
    affine: u32,   // 1: gamma (and beta) are bound; 0: gamma = 1, beta = 0
    eps: f32,
    momentum: f32,
    split: u32,    // the reductions: workgroups per channel (see channel_part in the prelude)
}

@group(0) @binding(0) var<uniform> p: Params;


fn invstd(v: f32) -> f32 {
    return 1.0 / sqrt(v + p.eps);
}

// ---- bn_stats: x -> per part (count, mean, M2 = Σ(x − mean)²), one workgroup per part; then
// bn_stats_finish -> mean, biased var per channel, Chan et al.'s pairwise combination in the
// order of the parts.
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read_write> stat_mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> stat_var: array<f32>;
@group(0) @binding(4) var<storage, read_write> stat_part: array<vec2<f32>>;

// Two passes over the part (mean, then the centred sum of squares): E[x²]−E[x]² loses all
// precision in f32 when |mean| ≫ std.
@compute @workgroup_size(256)
fn bn_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let part = my_part(wid, nwg);
    let k = f32(max(part.hi - part.lo, 1u));
    var acc = 0.0;
    for (var m = part.lo + lid; m < part.hi; m += WG) {
        acc += f32(x[at(part.c, m)]);
    }
    let mu = tree_sum(lid, acc) / k;
    var acc2 = 0.0;
    for (var m = part.lo + lid; m < part.hi; m += WG) {
        let d = f32(x[at(part.c, m)]) - mu;
        acc2 += d * d;
    }
    let m2 = tree_sum(lid, acc2);
    if lid == 0u && part.c < p.c {
        stat_part[part.c * p.split + part.j] = vec2(mu, m2);
    }
}

// The finishing passes bind only what they use: a binding's element type is checked against
// the shader's use of it, and the data the partial pass read may be f16.
@group(0) @binding(1) var<storage, read> fin_part: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> fin_mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> fin_var: array<f32>;

// Also the finishing pass of bn_act.wgsl's statistics of a site's input.
@compute @workgroup_size(256)
fn bn_stats_finish(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = flat(gid, nwg);
    if c >= p.c { return; }
    let count = p.n * p.hw;
    var n = 0.0;
    var mu = 0.0;
    var m2 = 0.0;
    for (var j = 0u; j < p.split; j++) {
        let part = channel_part(c * p.split + j, count, p.split);
        let nj = f32(part.hi - part.lo);
        if nj == 0.0 { continue; }
        let v = fin_part[c * p.split + j];
        let total = n + nj;
        let delta = v.x - mu;
        mu += delta * (nj / total);
        m2 += v.y + delta * delta * (n * nj / total);
        n = total;
    }
    fin_mean[c] = mu;
    fin_var[c] = m2 / max(n, 1.0);
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
    let c = channel(i);
    var b = 0.0;
    if p.affine != 0u { b = beta[c]; }
    y[i] = act((f32(x[i]) - mean[c]) * (invstd(variance[c]) * gamma_of(c)) + b);
}

// ---- bn_backward_reduce: x, mean, var, dy -> per part (Σ dy, Σ dy·(x − mean)), one workgroup
// per part; bn_backward_reduce_finish -> dgamma = Σ dy·x̂, dbeta = Σ dy per channel
@group(0) @binding(4) var<storage, read> red_dy: array<act>;
@group(0) @binding(5) var<storage, read_write> red_dgamma: array<f32>;
@group(0) @binding(6) var<storage, read_write> red_dbeta: array<f32>;
@group(0) @binding(7) var<storage, read_write> red_part: array<vec2<f32>>;

// One pass: Σ dy·x̂ = invstd·Σ dy·(x − mean), and both sums share one tree.
@compute @workgroup_size(256)
fn bn_backward_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let part = my_part(wid, nwg);
    var mu = 0.0;
    if part.c < p.c { mu = mean[part.c]; }
    var acc = vec2(0.0, 0.0);
    for (var m = part.lo + lid; m < part.hi; m += WG) {
        let i = at(part.c, m);
        let g = f32(red_dy[i]);
        acc += vec2(g, g * (f32(x[i]) - mu));
    }
    let s = tree_sum2(lid, acc);
    if lid == 0u && part.c < p.c {
        red_part[part.c * p.split + part.j] = s;
    }
}

@group(0) @binding(1) var<storage, read> fin_red_part: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> fin_red_var: array<f32>;
@group(0) @binding(3) var<storage, read_write> fin_dgamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> fin_dbeta: array<f32>;

@compute @workgroup_size(256)
fn bn_backward_reduce_finish(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = flat(gid, nwg);
    if c >= p.c { return; }
    var s = vec2(0.0, 0.0);
    for (var j = 0u; j < p.split; j++) {
        s += fin_red_part[c * p.split + j];
    }
    fin_dbeta[c] = s.x;
    fin_dgamma[c] = s.y * invstd(fin_red_var[c]);
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
    let c = channel(i);
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
    let c = channel(i);
    var g = 1.0;
    if p.affine != 0u { g = ev_gamma[c]; }
    ev_dx[i] = act(f32(ev_dy[i]) * (g * invstd(ev_var[c])));
}
