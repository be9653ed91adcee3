// The GEMM's parameter block and bindings, shared by gemm.wgsl (SIMT) and coop_gemm.wgsl
// (tensor cores): one launcher uniform (GemmUniform) serves both. C[b] = alpha · A[b]·B[b]
// (+ bias per column) (+ C[b] if accumulating); element (r, c) of an operand sits at
// off + r·rs + c·cs + batch·bs (C: cs = 1).

struct Params {
    m: u32, n: u32, k: u32, flags: u32,      // flags: 1 = add bias[col], 2 = accumulate into C,
                                             // 4 = coop_gemm may load fragments directly
    a_off: u32, a_rs: u32, a_cs: u32, a_bs: u32,
    b_off: u32, b_rs: u32, b_cs: u32, b_bs: u32,
    c_off: u32, c_rs: u32, c_bs: u32, bias_off: u32,
    alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<act>;
@group(0) @binding(2) var<storage, read> b: array<act>;
@group(0) @binding(3) var<storage, read> bias: array<act>;
@group(0) @binding(4) var<storage, read_write> c: array<act>;

