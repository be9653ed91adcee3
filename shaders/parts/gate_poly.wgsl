// AutoReP's gated site, the formulas gate.wgsl and bn_act.wgsl share. Over coef = [c0 | c1 | c2]
// of `channels` channels (both bind `coef`; both Params have s1, s2 and clip2):
//   P_c(x) = s2·c2[c]·x² + s1·c1[c]·x + c0[c],   site(x) = m·ReLU(x) + (1 − m)·P_c(x)
// with the official code's optional clamp of c2 to ±clip2.

// The x² coefficient as the polynomial uses it.
fn gate_c2(c: u32, channels: u32) -> f32 {
    let v = coef[2u * channels + c];
    if p.clip2 > 0.0 {
        return clamp(v, -p.clip2, p.clip2);
    }
    return v;
}

// Whether c2 passes a gradient: a clamped c2 passes none (the clamp's derivative), as
// torch.clamp.
fn gate_c2_free(c: u32, channels: u32) -> bool {
    return p.clip2 <= 0.0 || abs(coef[2u * channels + c]) <= p.clip2;
}

fn gate_poly(x: f32, c: u32, channels: u32) -> f32 {
    return p.s2 * gate_c2(c, channels) * x * x + p.s1 * coef[channels + c] * x + coef[c];
}

fn gate_value(m: f32, x: f32, c: u32, channels: u32) -> f32 {
    return m * max(x, 0.0) + (1.0 - m) * gate_poly(x, c, channels);
}

// d site / dx.
fn gate_slope(m: f32, x: f32, c: u32, channels: u32) -> f32 {
    let relu_slope = select(0.0, 1.0, x > 0.0);
    let poly_slope = 2.0 * p.s2 * gate_c2(c, channels) * x + p.s1 * coef[channels + c];
    return m * relu_slope + (1.0 - m) * poly_slope;
}

// d site / dm: the gap between the two branches.
fn gate_gap(x: f32, c: u32, channels: u32) -> f32 {
    return max(x, 0.0) - gate_poly(x, c, channels);
}
