// Deterministic reductions: fixed-order tree sums in workgroup memory, no float atomics,
// so a result never depends on scheduling.

struct Params {
    n: u32,       // sum_rows: valid elements in total; sum_mid: outer*inner outputs
    len: u32,     // sum_rows: row length; sum_mid: size of the reduced (middle) axis
    inner: u32,   // sum_mid: elements after the reduced axis
    _pad: u32,
    alpha: f32,   // scale applied to every result (1 for sums, 1/len for means)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read_write> out: array<act>;

// out[r] = alpha * sum_j x[r*len + j] over valid elements; one workgroup per row.
@compute @workgroup_size(256)
fn sum_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let row = wid.x + wid.y * nwg.x;
    let start = row * p.len;
    let end = min(start + p.len, p.n);
    var acc = 0.0;
    for (var i = start + lid; i < end; i += WG) {
        acc += f32(x[i]);
    }
    let sum = tree_sum(lid, acc);
    if lid == 0u && start < p.n { out[row] = act(p.alpha * sum); }
}

// x viewed as [outer, len, inner]: out[o, i] = alpha * sum_m x[o, m, i]; one invocation per output.
@compute @workgroup_size(256)
fn sum_mid(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat(gid, nwg);
    if t >= p.n { return; }
    let o = t / p.inner;
    let i = t % p.inner;
    var acc = 0.0;
    var idx = o * p.len * p.inner + i;
    for (var m = 0u; m < p.len; m++) {
        acc += f32(x[idx]);
        idx += p.inner;
    }
    out[t] = act(p.alpha * acc);
}

// ---- f32 partial sums (split-K planes) into act: bindings planes, out
@group(0) @binding(1) var<storage, read> planes: array<f32>;

// sum_mid over f32 planes ([outer, len, inner] as sum_mid): an f16 pass's partial sums stay
// f32 until this one rounding.
@compute @workgroup_size(256)
fn sum_planes(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat(gid, nwg);
    if t >= p.n { return; }
    let o = t / p.inner;
    let i = t % p.inner;
    var acc = 0.0;
    var idx = o * p.len * p.inner + i;
    for (var m = 0u; m < p.len; m++) {
        acc += planes[idx];
        idx += p.inner;
    }
    out[t] = act(p.alpha * acc);
}
