// Depthwise 2-D convolution over NCHW (groups = channels, one KH×KW filter per channel, square
// stride, zero padding), the convolution of EfficientNet's MBConv blocks. Memory-bound: one
// invocation per output (forward) or input element (input gradient: a gather over the outputs
// whose windows cover it, so no write races), one workgroup per weight (weight gradient: a
// fixed-order tree over N·OH·OW).

struct Params {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// forward: a = x, b = w, out = y; input gradient: a = dy, b = w, out = dx;
// weight gradient: a = x, b = dy, out = dw.
@group(0) @binding(1) var<storage, read> a: array<act>;
@group(0) @binding(2) var<storage, read> b: array<act>;
@group(0) @binding(3) var<storage, read_write> out: array<act>;

// The input position tap k of output o reads, or -1 outside 0..len.
fn tap(o: u32, k: u32, len: u32) -> i32 {
    let i = i32(o * p.stride + k) - i32(p.pad);
    return select(-1, i, i >= 0 && i < i32(len));
}

@compute @workgroup_size(256)
fn dwconv_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= p.n * p.c * p.oh * p.ow { return; }
    let ox = i % p.ow;
    let oy = (i / p.ow) % p.oh;
    let plane = i / (p.ow * p.oh);
    let x0 = plane * p.h * p.w;
    let w0 = (plane % p.c) * p.kh * p.kw;
    var acc = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = tap(oy, ky, p.h);
        if iy < 0 { continue; }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = tap(ox, kx, p.w);
            if ix >= 0 {
                acc += f32(a[x0 + u32(iy) * p.w + u32(ix)]) * f32(b[w0 + ky * p.kw + kx]);
            }
        }
    }
    out[i] = act(acc);
}

// The output along one axis that tap k of input position i belongs to, or -1.
fn source(i: u32, k: u32, len: u32) -> i32 {
    let t = i32(i + p.pad) - i32(k);
    if t < 0 || u32(t) % p.stride != 0u { return -1; }
    let o = u32(t) / p.stride;
    return select(-1, i32(o), o < len);
}

@compute @workgroup_size(256)
fn dwconv_input_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= p.n * p.c * p.h * p.w { return; }
    let ix = i % p.w;
    let iy = (i / p.w) % p.h;
    let plane = i / (p.w * p.h);
    let g0 = plane * p.oh * p.ow;
    let w0 = (plane % p.c) * p.kh * p.kw;
    var acc = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        let oy = source(iy, ky, p.oh);
        if oy < 0 { continue; }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ox = source(ix, kx, p.ow);
            if ox >= 0 {
                acc += f32(a[g0 + u32(oy) * p.ow + u32(ox)]) * f32(b[w0 + ky * p.kw + kx]);
            }
        }
    }
    out[i] = act(acc);
}

// One workgroup per weight (c, ky, kx), the workgroups split over x and y.
@compute @workgroup_size(256)
fn dwconv_weight_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let wi = wid.x + wid.y * nwg.x;
    // Uniform per workgroup: every invocation reaches the tree sum or none does.
    if wi >= p.c * p.kh * p.kw { return; }
    let kx = wi % p.kw;
    let ky = (wi / p.kw) % p.kh;
    let c = wi / (p.kw * p.kh);
    let per = p.oh * p.ow;
    var acc = 0.0;
    for (var j = lid; j < p.n * per; j += WG) {
        let n = j / per;
        let oy = (j % per) / p.ow;
        let ox = j % p.ow;
        let iy = tap(oy, ky, p.h);
        let ix = tap(ox, kx, p.w);
        if iy >= 0 && ix >= 0 {
            let plane = n * p.c + c;
            acc += f32(b[plane * per + j % per]) * f32(a[plane * p.h * p.w + u32(iy) * p.w + u32(ix)]);
        }
    }
    let sum = tree_sum(lid, acc);
    if lid == 0u { out[wi] = act(sum); }
}
