/// What every subgroup of the tensor-core ceiling kernel ([`crate::launch::coop_peak`])
/// stores: for A (64x16) and B (16x32), the first copy in `src`, row-major, the 8 accumulators
/// C_ij = iters · A_i·B_j (A_i rows 16i.., B_j columns 16j..), each 16x16 row-major, in the
/// order (i, j) = (0, 0), (0, 1), (1, 0), … (3, 1).
pub fn coop_peak(iters: usize, src: &[f32]) -> Vec<f32> {
    let (a, b) = (&src[..64 * 16], &src[64 * 16..64 * 16 + 16 * 32]);
    let mut out = Vec::with_capacity(8 * 256);
    for i in 0..4 {
        for j in 0..2 {
            for r in 0..16 {
                for c in 0..16 {
                    let dot: f32 = (0..16)
                        .map(|k| a[(16 * i + r) * 16 + k] * b[k * 32 + 16 * j + c])
                        .sum();
                    out.push(iters as f32 * dot);
                }
            }
        }
    }
    out
}
