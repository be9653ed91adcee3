// Training augmentation fused with normalisation: zero padding, random crop, horizontal flip,
// u8 -> f32, (v/255 - mean[c]) / std[c]. One invocation per output element of the f32 NCHW
// batch; the grid may be split over x and y, so the index folds y back in.
//
// data: the whole dataset, N x C x H x W u8 pixels packed 4 per word (little-endian).
// samples: 2 words per batch sample: dataset index, then the random word
//          bits 0..7 = dy, bits 8..15 = dx (crop offsets into the padded image, 0..=2*pad),
//          bit 16 = horizontal flip. dy = dx = pad and no flip is the plain image.
//
// A dataset larger than the storage-binding limit is bound one window of whole images at a
// time: `data` then starts at byte `byte_base` of the dataset, and this dispatch writes only
// the samples whose index lies in first..last (the last window, last == count, also writes
// the zeros of indices >= count). The launcher dispatches once per window.

struct Params {
    channels: u32,
    height: u32,
    width: u32,
    pad: u32,
    batch: u32,
    count: u32,   // images in `data`; a sample index >= count yields zeros
    n: u32,       // batch * channels * height * width
    first: u32,   // images first..last are in this window of `data`
    last: u32,
    byte_base: u32, // dataset byte offset of data[0]
    _pad0: u32,
    _pad3: u32,
    mean0: f32,
    mean1: f32,
    mean2: f32,
    _pad1: f32,
    std0: f32,
    std1: f32,
    std2: f32,
    _pad2: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> data: array<u32>;
@group(0) @binding(2) var<storage, read> samples: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<act>;

@compute @workgroup_size(256)
fn augment_batch(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if i >= p.n || i >= arrayLength(&out) { return; }
    let hw = p.height * p.width;
    let chw = p.channels * hw;
    let b = i / chw;
    let r = i % chw;
    let c = r / hw;
    let y = (r % hw) / p.width;
    let x = r % p.width;
    if 2u * b + 1u >= arrayLength(&samples) {
        out[i] = act(0.0);
        return;
    }
    let idx = samples[2u * b];
    let rw = samples[2u * b + 1u];
    if idx < p.first || (idx >= p.last && p.last < p.count) { return; }
    if idx >= p.count {
        out[i] = act(0.0);
        return;
    }
    let dy = i32(rw & 0xffu);
    let dx = i32((rw >> 8u) & 0xffu);
    let flip = ((rw >> 16u) & 1u) == 1u;
    let xs = select(x, p.width - 1u - x, flip);
    let sy = i32(y) + dy - i32(p.pad);
    let sx = i32(xs) + dx - i32(p.pad);
    var v = 0u;
    if sy >= 0 && sy < i32(p.height) && sx >= 0 && sx < i32(p.width) {
        let off = idx * chw + c * hw + u32(sy) * p.width + u32(sx) - p.byte_base;
        let word = off / 4u;
        if word < arrayLength(&data) {
            v = (data[word] >> ((off % 4u) * 8u)) & 0xffu;
        }
    }
    let m = select(select(p.mean0, p.mean1, c == 1u), p.mean2, c == 2u);
    let s = select(select(p.std0, p.std1, c == 1u), p.std2, c == 2u);
    out[i] = act((f32(v) / 255.0 - m) / s);
}
