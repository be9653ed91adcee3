// Softmax cross-entropy, one invocation per sample (class counts are small: 10 to 1000).

struct Params {
    rows: u32,
    classes: u32,
    _pad0: u32,
    _pad1: u32,
    smoothing: f32,   // label smoothing epsilon: target = (1-eps)*onehot + eps/K
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
// forward outputs
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> correct: array<f32>;
// backward: upstream gradient per row in, logits gradient out
@group(0) @binding(3) var<storage, read> gloss: array<f32>;
@group(0) @binding(4) var<storage, read_write> glogits: array<f32>;

fn row_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 64u;
}

fn row_max(base: u32) -> f32 {
    var m = logits[base];
    for (var k = 1u; k < p.classes; k++) { m = max(m, logits[base + k]); }
    return m;
}

@compute @workgroup_size(64)
fn ce_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = row_index(gid, nwg);
    if r >= p.rows { return; }
    let base = r * p.classes;
    let m = row_max(base);
    var s = 0.0;
    var total = 0.0;
    var best = 0u;
    for (var k = 0u; k < p.classes; k++) {
        let z = logits[base + k];
        s += exp(z - m);
        total += z;
        if z > logits[base + best] { best = k; }
    }
    let lse = m + log(s);
    let y = labels[r];
    let eps = p.smoothing;
    loss[r] = (1.0 - eps) * (lse - logits[base + y]) + eps * (lse - total / f32(p.classes));
    correct[r] = select(0.0, 1.0, best == y);
}

@compute @workgroup_size(64)
fn ce_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = row_index(gid, nwg);
    if r >= p.rows { return; }
    let base = r * p.classes;
    let m = row_max(base);
    var s = 0.0;
    for (var k = 0u; k < p.classes; k++) { s += exp(logits[base + k] - m); }
    let y = labels[r];
    let g = gloss[r];
    let eps = p.smoothing;
    let uniform_t = eps / f32(p.classes);
    for (var k = 0u; k < p.classes; k++) {
        let prob = exp(logits[base + k] - m) / s;
        let t = select(0.0, 1.0 - eps, k == y) + uniform_t;
        glogits[base + k] = g * (prob - t);
    }
}
