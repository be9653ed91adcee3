// Elementwise kernels over flat f32 buffers. One invocation per element; the grid may be
// split over x and y (65,535 workgroups per dimension), so the index folds y back in.

struct Params {
    n: u32,
    inner: u32,   // bias_add: elements per channel (H*W, or 1 for a matrix)
    channels: u32,
    _pad: u32,
    alpha: f32,
    beta: f32,
}

@group(0) @binding(0) var<uniform> p: Params;

// ---- two inputs, one output: bindings x, y, out
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read> y: array<act>;
@group(0) @binding(3) var<storage, read_write> out: array<act>;

// out = alpha*x + beta*y  (add, sub and scaled sums)
@compute @workgroup_size(256)
fn axpby(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i < p.n { out[i] = act(p.alpha * f32(x[i]) + p.beta * f32(y[i])); }
}

@compute @workgroup_size(256)
fn mul(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i < p.n { out[i] = act(f32(x[i]) * f32(y[i])); }
}

// out = y where x > 0 else 0   (x: ReLU input, y: upstream gradient)
@compute @workgroup_size(256)
fn relu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i < p.n { out[i] = act(select(0.0, f32(y[i]), f32(x[i]) > 0.0)); }
}


// out = y · d/dx[x·σ(x)] = y · σ(x)·(1 + x·(1 − σ(x)))   (x: SiLU input, y: upstream gradient)
@compute @workgroup_size(256)
fn silu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i < p.n {
        let s = sigmoid_of(f32(x[i]));
        out[i] = act(f32(y[i]) * s * (1.0 + f32(x[i]) * (1.0 - s)));
    }
}

// out = y · σ(x)·(1 − σ(x))   (x: sigmoid input, y: upstream gradient)
@compute @workgroup_size(256)
fn sigmoid_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i < p.n {
        let s = sigmoid_of(f32(x[i]));
        out[i] = act(f32(y[i]) * s * (1.0 - s));
    }
}

// out[o, c, i] = x[o, c, i] + y[c]
@compute @workgroup_size(256)
fn bias_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i < p.n { out[i] = act(f32(x[i]) + f32(y[(i / p.inner) % p.channels])); }
}

// ---- one input, one output: bindings x, out1. Entry points never share a binding slot's
// variable, so the slot numbering can differ between families.
@group(0) @binding(2) var<storage, read_write> out1: array<act>;

@compute @workgroup_size(256)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i < p.n { out1[i] = act(p.alpha * f32(x[i])); }
}

@compute @workgroup_size(256)
fn relu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i < p.n { out1[i] = act(max(f32(x[i]), 0.0)); }
}

// SiLU (swish): x·σ(x), EfficientNet's activation
@compute @workgroup_size(256)
fn silu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i < p.n { out1[i] = act(f32(x[i]) * sigmoid_of(f32(x[i]))); }
}

@compute @workgroup_size(256)
fn sigmoid(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i < p.n { out1[i] = act(sigmoid_of(f32(x[i]))); }
}

// out += alpha * x, in place (gradient accumulation, plain SGD)
@compute @workgroup_size(256)
fn axpy_inplace(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i < p.n { out1[i] = act(f32(out1[i]) + p.alpha * f32(x[i])); }
}

// ---- output only: binding fout
@group(0) @binding(1) var<storage, read_write> fout: array<act>;

@compute @workgroup_size(256)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i < p.n { fout[i] = act(p.alpha); }
}

// fout[i] = clamp(fout[i], alpha, beta) for i in [p.inner, p.n): a projection of part of a
// parameter onto an interval (AutoReP's c2 clip), in place.
@compute @workgroup_size(256)
fn clamp_range(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = p.inner + flat(gid, nwg);
    if i < p.n { fout[i] = act(clamp(f32(fout[i]), p.alpha, p.beta)); }
}

// ---- broadcast back over a reduced middle axis: y is [outer, inner], out is [outer, len, inner]
// (p.channels holds len). The backward of sum_mid and of full sums (outer = inner = 1).
@group(0) @binding(2) var<storage, read_write> eout: array<act>;

@compute @workgroup_size(256)
fn expand_mid(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i < p.n {
        let o = i / (p.channels * p.inner);
        eout[i] = act(p.alpha * f32(x[o * p.inner + i % p.inner]));
    }
}

// ---- precision casts between f32 and `act` (plain copies in the f32 variant): weights into
// their f16 copies, logits out to the f32 loss, and gradients back across both.
@group(0) @binding(1) var<storage, read> wide_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> narrow_out: array<act>;

@compute @workgroup_size(256)
fn to_act(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i < p.n { narrow_out[i] = act(p.alpha * wide_in[i]); }
}

@group(0) @binding(1) var<storage, read> narrow_in: array<act>;
@group(0) @binding(2) var<storage, read_write> wide_out: array<f32>;

@compute @workgroup_size(256)
fn from_act(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i < p.n { wide_out[i] = p.alpha * f32(narrow_in[i]); }
}
