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

// ---- Knowledge distillation (SoftTarget): loss_r = T^2 * KL(softmax(t/T) || softmax(s/T)),
// one invocation per row. Its own uniform, so the ce_* entry points keep their layout.
struct KdParams {
    rows: u32,
    classes: u32,
    _pad0: u32,
    _pad1: u32,
    temperature: f32,
}

@group(0) @binding(0) var<uniform> kp: KdParams;
// student logits come in through `logits` (binding 1); the teacher's are a plain input
@group(0) @binding(2) var<storage, read> teacher: array<f32>;

// log-sum-exp of the row of logits/T, returned with the row maximum (already divided by T).
fn kd_student_lse(base: u32, inv_t: f32) -> f32 {
    var m = logits[base] * inv_t;
    for (var k = 1u; k < kp.classes; k++) { m = max(m, logits[base + k] * inv_t); }
    var s = 0.0;
    for (var k = 0u; k < kp.classes; k++) { s += exp(logits[base + k] * inv_t - m); }
    return m + log(s);
}

fn kd_teacher_lse(base: u32, inv_t: f32) -> f32 {
    var m = teacher[base] * inv_t;
    for (var k = 1u; k < kp.classes; k++) { m = max(m, teacher[base + k] * inv_t); }
    var s = 0.0;
    for (var k = 0u; k < kp.classes; k++) { s += exp(teacher[base + k] * inv_t - m); }
    return m + log(s);
}

@compute @workgroup_size(64)
fn kd_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = row_index(gid, nwg);
    if r >= kp.rows { return; }
    let base = r * kp.classes;
    let inv_t = 1.0 / kp.temperature;
    let lse_s = kd_student_lse(base, inv_t);
    let lse_t = kd_teacher_lse(base, inv_t);
    var acc = 0.0;
    for (var k = 0u; k < kp.classes; k++) {
        // Per-term differences of log-probabilities so that student == teacher gives exactly 0.
        let log_pt = teacher[base + k] * inv_t - lse_t;
        let log_ps = logits[base + k] * inv_t - lse_s;
        acc += exp(log_pt) * (log_pt - log_ps);
    }
    loss[r] = kp.temperature * kp.temperature * acc;
}

// glogits[r, k] = gloss[r] * T * (softmax(s/T)_k - softmax(t/T)_k)
@compute @workgroup_size(64)
fn kd_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = row_index(gid, nwg);
    if r >= kp.rows { return; }
    let base = r * kp.classes;
    let inv_t = 1.0 / kp.temperature;
    let lse_s = kd_student_lse(base, inv_t);
    let lse_t = kd_teacher_lse(base, inv_t);
    let g = gloss[r] * kp.temperature;
    for (var k = 0u; k < kp.classes; k++) {
        let ps = exp(logits[base + k] * inv_t - lse_s);
        let pt = exp(teacher[base + k] * inv_t - lse_t);
        glogits[base + k] = g * (ps - pt);
    }
}
