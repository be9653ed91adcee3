//! The fused batch norm + residual + activation kernels: their CPU twins against the unfused
//! twins they replace (batch norm, add, ReLU/SiLU/gate), against finite differences in f64,
//! and the GPU launchers against the twins in f32 and f16.

mod common;
use autorep_kernels::params::{BnAct, BnShape, FusedAct, GateParams};
use autorep_kernels::{cpu, cpu::BnActSlices, launch, launch::BnActInputs, Dtype, Gpu};
use common::{as_stored, assert_grad, dtypes, gpu, numeric_grad, rand_vec, rel_err, tolerance};

const EPS: f32 = 1e-5;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Relu,
    Silu,
    Pixel,
    Channel,
}

/// Every activation, with and without a residual, in training and evaluation mode.
fn cases(shapes: &[(usize, usize, usize)]) -> Vec<BnAct> {
    let mut v = vec![];
    for &(n, channels, hw) in shapes {
        for kind in [Kind::Relu, Kind::Silu, Kind::Pixel, Kind::Channel] {
            for (residual, train) in [(false, true), (true, true), (true, false), (false, false)] {
                let gate = |channel_wise| {
                    FusedAct::Gate(GateParams {
                        batch: n,
                        channels,
                        hw,
                        channel_wise,
                        s1: 0.7,
                        s2: 0.3,
                        // Clamps some channels' c2 (|c2| ≤ 1 from rand_vec, shifted below).
                        clip2: if channel_wise { 0.0 } else { 0.9 },
                    })
                };
                let act = match kind {
                    Kind::Relu => FusedAct::Relu,
                    Kind::Silu => FusedAct::Silu,
                    Kind::Pixel => gate(false),
                    Kind::Channel => gate(true),
                };
                let s = BnShape { n, channels, hw };
                v.push(BnAct {
                    s,
                    eps: EPS,
                    residual,
                    train,
                    act,
                });
            }
        }
    }
    v
}

/// One call's operands (f32, or f64 for finite differences).
#[derive(Clone)]
struct Data<T> {
    x: Vec<T>,
    r: Option<Vec<T>>,
    gamma: Vec<T>,
    beta: Vec<T>,
    /// Batch statistics of x (training) or running ones (evaluation).
    mean: Vec<T>,
    var: Vec<T>,
    mask: Vec<T>,
    coef: Vec<T>,
    /// The gradient arriving at z.
    g: Vec<T>,
}

fn data<T: cpu::Real>(a: &BnAct, seed: u64) -> Data<T> {
    let conv = |v: Vec<f32>| v.into_iter().map(|x| T::lit(x as f64)).collect::<Vec<T>>();
    let (len, c) = (a.s.len(), a.s.channels);
    let x = conv(rand_vec(seed, len).iter().map(|v| 2.0 * v + 1.5).collect());
    let gates = a.gate().map_or(1, |p| p.gates());
    // A binary mask with a fractional gate or two (SNL's α is continuous).
    let mask = conv(
        rand_vec(seed + 1, gates)
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if i % 5 == 3 {
                    0.3
                } else {
                    (*v > 0.0) as u8 as f32
                }
            })
            .collect(),
    );
    let coef = conv(rand_vec(seed + 2, 3 * c).iter().map(|v| v * 1.2).collect());
    let (mut mean, mut var) = (vec![T::zero(); c], vec![T::zero(); c]);
    if a.train {
        cpu::bn_stats(a.s, &x, &mut mean, &mut var);
    } else {
        mean = conv(rand_vec(seed + 3, c));
        var = conv(
            rand_vec(seed + 4, c)
                .iter()
                .map(|v| v.abs() + 0.5)
                .collect(),
        );
    }
    Data {
        x,
        r: a.residual.then(|| conv(rand_vec(seed + 5, len))),
        gamma: conv(rand_vec(seed + 6, c).iter().map(|v| v + 1.5).collect()),
        beta: conv(rand_vec(seed + 7, c)),
        mean,
        var,
        mask,
        coef,
        g: conv(rand_vec(seed + 8, len)),
    }
}

/// Everything the fused kernels produce.
#[derive(Debug)]
struct Out<T> {
    z: Vec<T>,
    stats: [Vec<T>; 2],
    dx: Vec<T>,
    dgamma: Vec<T>,
    dbeta: Vec<T>,
    /// dL/ds: the residual's gradient.
    dy: Vec<T>,
    dcoef: Vec<T>,
    dm: Vec<T>,
}

fn fold<T: cpu::Real>(a: &BnAct, d: &Data<T>) -> Vec<T> {
    let mut f = vec![T::zero(); 4 * a.s.channels];
    cpu::bn_fold(
        a.s,
        T::lit(a.eps as f64),
        &d.mean,
        &d.var,
        &d.gamma,
        &d.beta,
        &mut f,
    );
    f
}

fn fused<T: cpu::Real>(a: &BnAct, d: &Data<T>) -> Out<T> {
    let (len, c) = (a.s.len(), a.s.channels);
    let f = fold(a, d);
    let inp = BnActSlices {
        x: &d.x,
        r: d.r.as_deref(),
        fold: &f,
        gate: a.gate().map(|_| (&d.mask[..], &d.coef[..])),
    };
    let mut z = vec![T::zero(); len];
    cpu::bn_act_forward(a, &inp, &mut z);
    let (mut sm, mut sv) = (vec![T::zero(); c], vec![T::zero(); c]);
    cpu::bn_act_stats(a, &inp, &mut sm, &mut sv);
    let mut sums = vec![T::zero(); a.sums_len()];
    let mut dy = vec![T::zero(); len];
    cpu::bn_act_backward_reduce(a, &inp, &d.g, &mut sums, Some(&mut dy));
    let mut dx = vec![T::zero(); len];
    cpu::bn_act_backward_input(a, &inp, &d.g, &sums, &mut dx);
    let mut dm = vec![T::zero(); a.gate().map_or(0, |p| p.gates())];
    if a.gate().is_some() {
        cpu::bn_act_grad_mask(a, &inp, &d.g, &mut dm);
    }
    let st = a.stride();
    Out {
        z,
        stats: [sm, sv],
        dx,
        dbeta: sums[..c].to_vec(),
        dgamma: sums[st..st + c].to_vec(),
        dy,
        dcoef: match a.gate() {
            Some(_) => sums[2 * st..2 * st + 3 * c].to_vec(),
            None => vec![],
        },
        dm,
    }
}

/// The same from the unfused twins: batch norm, add, then the activation.
fn unfused(a: &BnAct, d: &Data<f32>) -> Out<f32> {
    let (len, c) = (a.s.len(), a.s.channels);
    let mut s = vec![0f32; len];
    let aff = Some((&d.gamma[..], &d.beta[..]));
    cpu::bn_forward(a.s, a.eps, &d.x, &d.mean, &d.var, aff, &mut s);
    if let Some(r) = &d.r {
        s.iter_mut().zip(r).for_each(|(v, r)| *v += r);
    }
    let sig = |v: f32| 1.0 / (1.0 + (-v).exp());
    let (mut z, mut dy) = (vec![0f32; len], vec![0f32; len]);
    let (mut dcoef, mut dm) = (vec![], vec![]);
    match a.act {
        FusedAct::Relu => {
            for i in 0..len {
                z[i] = s[i].max(0.0);
                dy[i] = if s[i] > 0.0 { d.g[i] } else { 0.0 };
            }
        }
        FusedAct::Silu => {
            for i in 0..len {
                z[i] = s[i] * sig(s[i]);
                dy[i] = d.g[i] * sig(s[i]) * (1.0 + s[i] * (1.0 - sig(s[i])));
            }
        }
        FusedAct::Gate(p) => {
            cpu::gate_forward(&p, &s, &d.mask, &d.coef, &mut z);
            cpu::gate_grad_x(&p, &s, &d.g, &d.mask, &d.coef, &mut dy);
            dcoef = vec![0f32; 3 * c];
            cpu::gate_grad_coef(&p, &s, &d.g, &d.mask, &d.coef, &mut dcoef);
            dm = vec![0f32; p.gates()];
            cpu::gate_grad_mask(&p, &s, &d.g, &d.coef, &mut dm);
        }
    }
    let (mut sm, mut sv) = (vec![0f32; c], vec![0f32; c]);
    cpu::bn_stats(a.s, &s, &mut sm, &mut sv);
    let (mut dg, mut db, mut dx) = (vec![0f32; c], vec![0f32; c], vec![0f32; len]);
    let gamma = Some(&d.gamma[..]);
    if a.train {
        cpu::bn_backward(
            a.s, a.eps, &d.x, &d.mean, &d.var, gamma, &dy, &mut dg, &mut db, &mut dx,
        );
    } else {
        cpu::bn_backward_reduce(a.s, a.eps, &d.x, &d.mean, &d.var, &dy, &mut dg, &mut db);
        cpu::bn_backward_input_eval(a.s, a.eps, &d.var, gamma, &dy, &mut dx);
    }
    Out {
        z,
        stats: [sm, sv],
        dx,
        dgamma: dg,
        dbeta: db,
        dy,
        dcoef,
        dm,
    }
}

fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    let e = rel_err(got, want);
    assert!(e <= tol, "{what}: rel err {e} > {tol}");
}

fn compare(got: &Out<f32>, want: &Out<f32>, tol: f32, what: &str) {
    let pairs: [(&str, &[f32], &[f32]); 9] = [
        ("z", &got.z, &want.z),
        ("site mean", &got.stats[0], &want.stats[0]),
        ("site var", &got.stats[1], &want.stats[1]),
        ("dx", &got.dx, &want.dx),
        ("dgamma", &got.dgamma, &want.dgamma),
        ("dbeta", &got.dbeta, &want.dbeta),
        ("dy", &got.dy, &want.dy),
        ("dcoef", &got.dcoef, &want.dcoef),
        ("dm", &got.dm, &want.dm),
    ];
    for (name, g, w) in pairs {
        assert_close(g, w, tol, &format!("{what} {name}"));
    }
}

// (Two values per channel would make dx pure rounding noise: BN maps them to ±1 whatever x is.)
// (3, 2, 3001): channels of 9003 elements, reduced in two parts (4502 and 4501) on a GPU.
const SHAPES: &[(usize, usize, usize)] = &[(3, 5, 20), (2, 70, 9), (5, 3, 1), (3, 2, 3001)];

#[test]
fn fused_twins_match_the_unfused_twins() {
    for (k, a) in cases(SHAPES).iter().enumerate() {
        let d = data::<f32>(a, 10 + k as u64);
        compare(&fused(a, &d), &unfused(a, &d), 2e-5, &format!("{a:?}"));
    }
}

/// Σ w·z as a function of every input, the batch statistics recomputed from x in training.
fn loss(a: &BnAct, d: &Data<f64>, w: &[f64]) -> f64 {
    let mut d = d.clone();
    if a.train {
        cpu::bn_stats(a.s, &d.x, &mut d.mean, &mut d.var);
    }
    let f = fold(a, &d);
    let inp = BnActSlices {
        x: &d.x,
        r: d.r.as_deref(),
        fold: &f,
        gate: a.gate().map(|_| (&d.mask[..], &d.coef[..])),
    };
    let mut z = vec![0.0; a.s.len()];
    cpu::bn_act_forward(a, &inp, &mut z);
    z.iter().zip(w).map(|(z, w)| z * w).sum()
}

/// Central differences of the loss in the input that `edit` sets to its argument, at `v`.
fn numeric_in(
    a: &BnAct,
    d: &Data<f64>,
    w: &[f64],
    v: &[f64],
    edit: impl Fn(&mut Data<f64>, &[f64]),
) -> Vec<f64> {
    numeric_grad(v, |v| {
        let mut e = d.clone();
        edit(&mut e, v);
        loss(a, &e, w)
    })
}

#[test]
fn fused_backward_matches_finite_differences() {
    for (k, a) in cases(&[(2, 3, 4), (3, 2, 1)]).iter().enumerate() {
        let d = data::<f64>(a, 50 + k as u64);
        // loss = Σ g ⊙ z, so the gradient arriving at z is g.
        let w = d.g.clone();
        let out = fused(a, &d);
        let what = format!("{a:?}");
        let num_x = numeric_in(a, &d, &w, &d.x, |e, v| e.x = v.to_vec());
        assert_grad(&out.dx, &num_x, &format!("{what} dx"));
        let num_g = numeric_in(a, &d, &w, &d.gamma, |e, v| e.gamma = v.to_vec());
        assert_grad(&out.dgamma, &num_g, &format!("{what} dgamma"));
        let num_b = numeric_in(a, &d, &w, &d.beta, |e, v| e.beta = v.to_vec());
        assert_grad(&out.dbeta, &num_b, &format!("{what} dbeta"));
        if let Some(r) = &d.r {
            let num_r = numeric_in(a, &d, &w, r, |e, v| e.r = Some(v.to_vec()));
            assert_grad(&out.dy, &num_r, &format!("{what} dr"));
        }
        if a.gate().is_some() {
            let num_c = numeric_in(a, &d, &w, &d.coef, |e, v| e.coef = v.to_vec());
            assert_grad(&out.dcoef, &num_c, &format!("{what} dcoef"));
            let num_m = numeric_in(a, &d, &w, &d.mask, |e, v| e.mask = v.to_vec());
            assert_grad(&out.dm, &num_m, &format!("{what} dmask"));
        }
    }
}

/// The launchers on `dtype` operands against the twins on the same (rounded) values.
fn gpu_out(g: &Gpu, a: &BnAct, d: &Data<f32>, dtype: Dtype) -> Out<f32> {
    let (len, c) = (a.s.len(), a.s.channels);
    let upa = |v: &[f32]| g.upload_as(v, dtype).unwrap();
    let up = |v: &[f32]| g.upload(v).unwrap();
    let f32s = |n: usize| g.alloc_elems(n.max(1), Dtype::F32).unwrap();
    let acts = || g.alloc_elems(len, dtype).unwrap();
    let (bx, bg) = (upa(&d.x), upa(&d.g));
    let br = d.r.as_deref().map(upa);
    let (bmean, bvar, bgamma, bbeta) = (up(&d.mean), up(&d.var), up(&d.gamma), up(&d.beta));
    let (bmask, bcoef) = (up(&d.mask), up(&d.coef));
    let bfold = f32s(4 * c);
    launch::bn_fold(g, a.s, a.eps, &bmean, &bvar, &bgamma, &bbeta, &bfold).unwrap();
    let inp = BnActInputs {
        x: &bx,
        r: br.as_ref(),
        fold: &bfold,
        gate: a.gate().map(|_| (&bmask, &bcoef)),
    };
    let (bz, bdy, bdx) = (acts(), acts(), acts());
    launch::bn_act_forward(g, a, &inp, &bz).unwrap();
    let (sm, sv) = (f32s(c), f32s(c));
    launch::bn_act_stats(g, a, &inp, &sm, &sv).unwrap();
    let sums = f32s(a.sums_len());
    launch::bn_act_backward_reduce(g, a, &inp, &bg, &sums, Some(&bdy), &bdx).unwrap();
    launch::bn_act_backward_input(g, a, &inp, &bg, &sums, &bdx).unwrap();
    let gates = a.gate().map_or(0, |p| p.gates());
    let dm = f32s(gates);
    if a.gate().is_some() {
        launch::bn_act_grad_mask(g, a, &inp, &bg, &dm).unwrap();
    }
    let rd = |b, n| g.read_values(b, 0, n).unwrap();
    let sums = rd(&sums, a.sums_len());
    let st = a.stride();
    Out {
        z: rd(&bz, len),
        stats: [rd(&sm, c), rd(&sv, c)],
        dx: rd(&bdx, len),
        dbeta: sums[..c].to_vec(),
        dgamma: sums[st..st + c].to_vec(),
        dy: rd(&bdy, len),
        dcoef: match a.gate() {
            Some(_) => sums[2 * st..2 * st + 3 * c].to_vec(),
            None => vec![],
        },
        dm: rd(&dm, gates),
    }
}

#[test]
fn fused_kernels_match_their_twins() {
    let Some(g) = gpu() else { return };
    for dtype in dtypes(&g) {
        for (k, a) in cases(SHAPES).iter().enumerate() {
            let mut d = data::<f32>(a, 90 + k as u64);
            d.x = as_stored(d.x, dtype);
            d.g = as_stored(d.g, dtype);
            d.r = d.r.map(|r| as_stored(r, dtype));
            let mut want = fused(a, &d);
            let got = gpu_out(&g, a, &d, dtype);
            // Activations are stored in the kernel's type; sums and statistics in f32.
            for v in [&mut want.z, &mut want.dx, &mut want.dy] {
                *v = as_stored(std::mem::take(v), dtype);
            }
            compare(
                &got,
                &want,
                tolerance(dtype, 2e-4),
                &format!("{a:?} {dtype:?}"),
            );
        }
    }
}
