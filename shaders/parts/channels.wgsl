// NCHW addressing of the batch-norm family (norm.wgsl, bn_act.wgsl), whose Params both have
// n (images), c (channels), hw (pixels per plane) and split (workgroups per channel of a
// reduction, see channel_part in the prelude).

fn total() -> u32 {
    return p.n * p.c * p.hw;
}

// The channel of flat element i.
fn channel(i: u32) -> u32 {
    return (i / p.hw) % p.c;
}

// Flat index of element m (of N·H·W, image-major) of channel c.
fn at(c: u32, m: u32) -> u32 {
    let img = m / p.hw;
    return (img * p.c + c) * p.hw + (m - img * p.hw);
}

// This workgroup's part of its channel (empty past the last channel).
fn my_part(wid: vec3<u32>, nwg: vec3<u32>) -> ChannelPart {
    var part = channel_part(group_index(wid, nwg), p.n * p.hw, p.split);
    if part.c >= p.c {
        part.lo = 0u;
        part.hi = 0u;
    }
    return part;
}

