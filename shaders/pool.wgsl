// 2-D pooling over NCHW, square windows, floor mode. One invocation per output (forward) or
// per input element (backward) over a grid split across x and y. Backward passes gather over
// the outputs whose windows cover an input element instead of scattering, so there are no
// write races and no float atomics, and the summation order is fixed.

struct Params {
    x_len: u32,   // N·C·H·W
    y_len: u32,   // N·C·OH·OW
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    k: u32,
    stride: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// First and one-past-last output along an axis whose windows cover input position i:
// o·stride − pad ≤ i ≤ o·stride − pad + k − 1.
fn covering(i: u32, out: u32) -> vec2<u32> {
    let top = i + p.pad + 1u;
    let lo = (select(0u, top - p.k, top > p.k) + p.stride - 1u) / p.stride;
    let hi = min((i + p.pad) / p.stride + 1u, out);
    return vec2(lo, max(hi, lo));
}

// ---- forward: x -> y (and argmax)
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read_write> y: array<act>;
@group(0) @binding(3) var<storage, read_write> argmax: array<u32>;

// count_include_pad = True: the divisor is always k² (in floor mode no window reaches past
// the padding).
@compute @workgroup_size(256)
fn avg_pool2d_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = flat(gid, nwg);
    if o >= p.y_len { return; }
    let ox = o % p.ow;
    let oy = (o / p.ow) % p.oh;
    let base = o / (p.ow * p.oh) * p.h * p.w;
    let y0 = i32(oy * p.stride) - i32(p.pad);
    let x0 = i32(ox * p.stride) - i32(p.pad);
    var acc = 0.0;
    for (var ky = 0; ky < i32(p.k); ky++) {
        let iy = y0 + ky;
        if iy < 0 || iy >= i32(p.h) { continue; }
        for (var kx = 0; kx < i32(p.k); kx++) {
            let ix = x0 + kx;
            let i = base + u32(iy) * p.w + u32(ix);
            if ix >= 0 && ix < i32(p.w) && i < p.x_len { acc += f32(x[i]); }
        }
    }
    y[o] = act(acc / f32(p.k * p.k));
}

// Padding is never the maximum; ties keep the first maximum in row-major window order. The
// index is the position within the H×W plane, as PyTorch reports it.
@compute @workgroup_size(256)
fn max_pool2d_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = flat(gid, nwg);
    if o >= p.y_len { return; }
    let ox = o % p.ow;
    let oy = (o / p.ow) % p.oh;
    let base = o / (p.ow * p.oh) * p.h * p.w;
    let y0 = i32(oy * p.stride) - i32(p.pad);
    let x0 = i32(ox * p.stride) - i32(p.pad);
    var best = 0.0;
    var at = 0u;
    var found = false;
    for (var ky = 0; ky < i32(p.k); ky++) {
        let iy = y0 + ky;
        if iy < 0 || iy >= i32(p.h) { continue; }
        for (var kx = 0; kx < i32(p.k); kx++) {
            let ix = x0 + kx;
            let pos = u32(iy) * p.w + u32(ix);
            if ix >= 0 && ix < i32(p.w) && base + pos < p.x_len {
                let v = f32(x[base + pos]);
                if !found || v > best {
                    best = v;
                    at = pos;
                    found = true;
                }
            }
        }
    }
    y[o] = act(best);
    argmax[o] = at;
}

// ---- backward: dy (and argmax) -> dx, one invocation per input element
@group(0) @binding(1) var<storage, read> dy: array<act>;
@group(0) @binding(2) var<storage, read_write> dx: array<act>;
@group(0) @binding(2) var<storage, read> bwd_argmax: array<u32>;
@group(0) @binding(3) var<storage, read_write> mdx: array<act>;

@compute @workgroup_size(256)
fn avg_pool2d_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= p.x_len { return; }
    let ix = i % p.w;
    let iy = (i / p.w) % p.h;
    let base = i / (p.w * p.h) * p.oh * p.ow;
    let ry = covering(iy, p.oh);
    let rx = covering(ix, p.ow);
    var acc = 0.0;
    for (var oy = ry.x; oy < ry.y; oy++) {
        for (var ox = rx.x; ox < rx.y; ox++) {
            let o = base + oy * p.ow + ox;
            if o < p.y_len { acc += f32(dy[o]); }
        }
    }
    dx[i] = act(acc / f32(p.k * p.k));
}

@compute @workgroup_size(256)
fn max_pool2d_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= p.x_len { return; }
    let ix = i % p.w;
    let iy = (i / p.w) % p.h;
    let me = iy * p.w + ix;
    let base = i / (p.w * p.h) * p.oh * p.ow;
    let ry = covering(iy, p.oh);
    let rx = covering(ix, p.ow);
    var acc = 0.0;
    for (var oy = ry.x; oy < ry.y; oy++) {
        for (var ox = rx.x; ox < rx.y; ox++) {
            let o = base + oy * p.ow + ox;
            if o < p.y_len && bwd_argmax[o] == me { acc += f32(dy[o]); }
        }
    }
    mdx[i] = act(acc);
}
