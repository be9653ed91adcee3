//! One table of differentiable op cases, shared by the GPU-vs-CPU test and the gradient check.

use autorep::{Labels, Result, Tensor};
use autorep_kernels::cpu;
use autorep_kernels::params;
use autorep_kernels::params::GemmParams;
use std::rc::Rc;

type Fwd = Box<dyn Fn(&[Tensor]) -> Result<Tensor>>;
type Ref64 = Box<dyn Fn(&[Vec<f64>]) -> Vec<f64>>;

pub struct Case {
    pub name: &'static str,
    pub shapes: Vec<Vec<usize>>,
    pub forward: Fwd,
    /// The same function in f64 on the CPU twins, for finite differences.
    pub reference: Ref64,
    /// GPU vs CPU tolerance (normwise relative).
    pub tol: f32,
    /// Keep inputs away from 0 (ReLU's kink).
    pub avoid_zero: bool,
}

fn case(
    name: &'static str,
    shapes: Vec<Vec<usize>>,
    tol: f32,
    forward: Fwd,
    reference: Ref64,
) -> Case {
    Case {
        name,
        shapes,
        forward,
        reference,
        tol,
        avoid_zero: false,
    }
}

fn mm_ref(m: usize, n: usize, k: usize, ta: bool, tb: bool) -> Ref64 {
    Box::new(move |x| {
        let mut c = vec![0f64; m * n];
        cpu::gemm(
            &GemmParams::dense(m, n, k, ta, tb),
            &x[0],
            &x[1],
            &[],
            &mut c,
        );
        c
    })
}

pub fn cases() -> Vec<Case> {
    let labels: Vec<u32> = vec![3, 0, 6, 2, 6];
    let ce_labels = labels.clone();
    let mut v = vec![
        case(
            "add",
            vec![vec![7, 33], vec![7, 33]],
            1e-5,
            Box::new(|t| t[0].add(&t[1])),
            Box::new(|x| {
                let mut o = vec![0.0; x[0].len()];
                cpu::axpby(1.0, &x[0], 1.0, &x[1], &mut o);
                o
            }),
        ),
        case(
            "sub",
            vec![vec![129], vec![129]],
            1e-5,
            Box::new(|t| t[0].sub(&t[1])),
            Box::new(|x| {
                let mut o = vec![0.0; x[0].len()];
                cpu::axpby(1.0, &x[0], -1.0, &x[1], &mut o);
                o
            }),
        ),
        case(
            "mul",
            vec![vec![3, 5, 7], vec![3, 5, 7]],
            1e-5,
            Box::new(|t| t[0].mul(&t[1])),
            Box::new(|x| {
                let mut o = vec![0.0; x[0].len()];
                cpu::mul(&x[0], &x[1], &mut o);
                o
            }),
        ),
        case(
            "scale",
            vec![vec![33]],
            1e-5,
            Box::new(|t| t[0].scale(-2.5)),
            Box::new(|x| x[0].iter().map(|v| -2.5 * v).collect()),
        ),
        case(
            "bias_add 2d",
            vec![vec![7, 5], vec![5]],
            1e-5,
            Box::new(|t| t[0].bias_add(&t[1])),
            Box::new(|x| {
                let mut o = vec![0.0; x[0].len()];
                cpu::bias_add(&x[0], &x[1], 1, &mut o);
                o
            }),
        ),
        case(
            "bias_add 4d",
            vec![vec![2, 3, 4, 5], vec![3]],
            1e-5,
            Box::new(|t| t[0].bias_add(&t[1])),
            Box::new(|x| {
                let mut o = vec![0.0; x[0].len()];
                cpu::bias_add(&x[0], &x[1], 20, &mut o);
                o
            }),
        ),
        case(
            "sum",
            vec![vec![7, 129]],
            1e-4,
            Box::new(|t| t[0].sum()),
            Box::new(|x| vec![x[0].iter().sum()]),
        ),
        case(
            "mean",
            vec![vec![33, 7]],
            1e-4,
            Box::new(|t| t[0].mean()),
            Box::new(|x| vec![x[0].iter().sum::<f64>() / x[0].len() as f64]),
        ),
        case(
            "sum_axis 0",
            vec![vec![7, 5, 3]],
            1e-4,
            Box::new(|t| t[0].sum_axis(0)),
            Box::new(|x| {
                let mut o = vec![0.0; 15];
                cpu::sum_mid(&x[0], 1, 7, 15, 1.0, &mut o);
                o
            }),
        ),
        case(
            "mean_axis 1",
            vec![vec![7, 5, 3]],
            1e-4,
            Box::new(|t| t[0].mean_axis(1)),
            Box::new(|x| {
                let mut o = vec![0.0; 21];
                cpu::sum_mid(&x[0], 7, 5, 3, 0.2, &mut o);
                o
            }),
        ),
        case(
            "sum_axis 2",
            vec![vec![7, 5, 3]],
            1e-4,
            Box::new(|t| t[0].sum_axis(2)),
            Box::new(|x| {
                let mut o = vec![0.0; 35];
                cpu::sum_mid(&x[0], 35, 3, 1, 1.0, &mut o);
                o
            }),
        ),
        case(
            "reshape",
            vec![vec![6, 4]],
            1e-5,
            Box::new(|t| t[0].reshape(&[3, 8])?.scale(1.0)),
            Box::new(|x| x[0].clone()),
        ),
        case(
            "cross_entropy",
            vec![vec![5, 7]],
            1e-5,
            Box::new(move |t| {
                let l = Rc::new(Labels::new(&t[0].device(), &labels)?);
                Ok(t[0].scale(3.0)?.cross_entropy(&l, 0.1)?.loss)
            }),
            Box::new(move |x| {
                let z: Vec<f64> = x[0].iter().map(|v| 3.0 * v).collect();
                let (mut loss, mut correct) = (vec![0.0; 5], vec![0.0; 5]);
                cpu::ce_forward(&z, &ce_labels, 7, 0.1, &mut loss, &mut correct);
                loss
            }),
        ),
    ];
    for (stride, pad, k) in [(1, 1, 3), (2, 1, 3), (2, 0, 1), (1, 2, 5)] {
        let p = params::ConvParams {
            n: 2,
            cin: 3,
            h: 7,
            w: 6,
            cout: 5,
            kh: k,
            kw: k,
            stride,
            pad,
        };
        v.push(Case {
            name: "conv2d",
            shapes: vec![vec![2, 3, 7, 6], vec![5, 3, k, k]],
            forward: Box::new(move |t| t[0].conv2d(&t[1], stride, pad, "test conv")),
            reference: Box::new(move |x| {
                let mut y = vec![0.0; p.y_len()];
                cpu::conv2d_forward(&p, &x[0], &x[1], &mut y);
                y
            }),
            tol: 1e-4,
            avoid_zero: false,
        });
    }
    v.push(case(
        "channel_scale",
        vec![vec![2, 3, 4, 5], vec![2, 3]],
        1e-5,
        Box::new(|t| t[0].channel_scale(&t[1])),
        Box::new(|x| {
            x[0].iter()
                .enumerate()
                .map(|(i, v)| v * x[1][i / 20])
                .collect()
        }),
    ));
    // EfficientNet's depthwise windows: 3x3 stride 1 and 5x5 stride 2.
    for (k, stride, pad, name) in [
        (3, 1, 1, "depthwise_conv2d 3x3"),
        (5, 2, 2, "depthwise_conv2d 5x5 stride 2"),
    ] {
        let p = params::DwConvParams {
            n: 2,
            c: 3,
            h: 7,
            w: 6,
            kh: k,
            kw: k,
            stride,
            pad,
        };
        v.push(case(
            name,
            vec![vec![2, 3, 7, 6], vec![3, 1, k, k]],
            1e-4,
            Box::new(move |t| t[0].depthwise_conv2d(&t[1], stride, pad, "test dwconv")),
            Box::new(move |x| {
                let mut y = vec![0.0; p.y_len()];
                cpu::dwconv2d_forward(&p, &x[0], &x[1], &mut y);
                y
            }),
        ));
    }
    for (channel_wise, clip2) in [(false, 0.0), (true, 0.0), (false, 0.3)] {
        let gp = params::GateParams {
            batch: 2,
            channels: 3,
            hw: 20,
            channel_wise,
            s1: 1.0,
            s2: 0.5,
            clip2,
        };
        let gates = gp.gates();
        let mask: Vec<f32> = (0..gates).map(|i| (i % 3 != 0) as u8 as f32).collect();
        let mask2 = mask.clone();
        v.push(Case {
            name: match (channel_wise, clip2 > 0.0) {
                (_, true) => "gate pixel-wise, c2 clamped",
                (true, _) => "gate channel-wise",
                _ => "gate pixel-wise",
            },
            shapes: vec![vec![2, 3, 4, 5], vec![9]],
            forward: Box::new(move |t| {
                let dev = t[0].device();
                let m = Tensor::from_vec(&dev, &[gates], mask.clone())?;
                let h = Tensor::from_vec(&dev, &[gates], vec![0.5; gates])?;
                let counter = Rc::new(autorep::tensor::ReluCounter::new(&dev)?);
                let grad = params::GateGrad::Ste {
                    penalty: 0.0,
                    budget: 0,
                };
                t[0].gate(&m, &t[1], &h, gp, grad, &counter)
            }),
            reference: Box::new(move |x| {
                let m: Vec<f64> = mask2.iter().map(|&v| v as f64).collect();
                let mut y = vec![0.0; gp.n()];
                cpu::gate_forward(&gp, &x[0], &m, &x[1], &mut y);
                y
            }),
            tol: 1e-5,
            avoid_zero: true,
        });
    }
    for train in [true, false] {
        let s = params::BnShape {
            n: 3,
            channels: 4,
            hw: 10,
        };
        let (rm0, rv0) = (vec![0.1f32, -0.2, 0.3, 0.0], vec![0.5f32, 1.5, 2.0, 1.0]);
        let (rm1, rv1) = (rm0.clone(), rv0.clone());
        v.push(Case {
            name: if train {
                "batch_norm train"
            } else {
                "batch_norm eval"
            },
            shapes: vec![vec![3, 4, 2, 5], vec![4], vec![4]],
            forward: Box::new(move |t| {
                let dev = t[0].device();
                let rm = Tensor::from_vec(&dev, &[4], rm0.clone())?;
                let rv = Tensor::from_vec(&dev, &[4], rv0.clone())?;
                let cfg = autorep::tensor::BnConfig::default();
                t[0].batch_norm(Some((&t[1], &t[2])), &rm, &rv, train, cfg, "test bn")
            }),
            reference: Box::new(move |x| {
                let (mut m, mut var) = (vec![0.0; 4], vec![0.0; 4]);
                if train {
                    cpu::bn_stats(s, &x[0], &mut m, &mut var);
                } else {
                    m = rm1.iter().map(|&v| v as f64).collect();
                    var = rv1.iter().map(|&v| v as f64).collect();
                }
                let mut y = vec![0.0; s.len()];
                cpu::bn_forward(s, 1e-5, &x[0], &m, &var, Some((&x[1], &x[2])), &mut y);
                y
            }),
            tol: 1e-4,
            avoid_zero: false,
        });
    }
    for (k, stride, pad) in [(2, 2, 0), (3, 2, 1), (3, 1, 1)] {
        let p = params::PoolParams {
            n: 2,
            c: 3,
            h: 7,
            w: 6,
            k,
            stride,
            pad,
        };
        v.push(case(
            "avg_pool2d",
            vec![vec![2, 3, 7, 6]],
            1e-5,
            Box::new(move |t| t[0].avg_pool2d(k, stride, pad)),
            Box::new(move |x| {
                let mut y = vec![0.0; p.n * p.c * p.oh() * p.ow()];
                cpu::avg_pool2d_forward(&p, &x[0], &mut y);
                y
            }),
        ));
        v.push(case(
            "max_pool2d",
            vec![vec![2, 3, 7, 6]],
            1e-5,
            Box::new(move |t| t[0].max_pool2d(k, stride, pad)),
            Box::new(move |x| {
                let n = p.n * p.c * p.oh() * p.ow();
                let (mut y, mut idx) = (vec![0.0; n], vec![0u32; n]);
                cpu::max_pool2d_forward(&p, &x[0], &mut y, &mut idx);
                y
            }),
        ));
    }
    v.push(case(
        "global_avg_pool",
        vec![vec![3, 5, 4, 3]],
        1e-5,
        Box::new(|t| t[0].global_avg_pool()),
        Box::new(|x| {
            let mut y = vec![0.0; 15];
            cpu::global_avg_pool_forward(3, 5, 12, &x[0], &mut y);
            y
        }),
    ));
    let teacher = crate::common::rand_vec(55, 5 * 7);
    let teacher2 = teacher.clone();
    v.push(case(
        "distill",
        vec![vec![5, 7]],
        1e-5,
        Box::new(move |t| {
            let tt = Tensor::from_vec(&t[0].device(), &[5, 7], teacher.clone())?;
            t[0].scale(2.0)?.distill(&tt, 4.0)
        }),
        Box::new(move |x| {
            let s: Vec<f64> = x[0].iter().map(|v| 2.0 * v).collect();
            let t: Vec<f64> = teacher2.iter().map(|&v| v as f64).collect();
            let mut loss = vec![0.0; 5];
            cpu::kd_forward(&s, &t, 7, 4.0, &mut loss);
            loss
        }),
    ));
    let mut relu = case(
        "relu",
        vec![vec![9, 13]],
        1e-5,
        Box::new(|t| t[0].relu()),
        Box::new(|x| {
            let mut o = vec![0.0; x[0].len()];
            cpu::relu(&x[0], &mut o);
            o
        }),
    );
    relu.avoid_zero = true;
    v.push(relu);
    v.push(case(
        "silu",
        vec![vec![9, 13]],
        1e-5,
        Box::new(|t| t[0].silu()),
        Box::new(|x| {
            let mut o = vec![0.0; x[0].len()];
            cpu::silu(&x[0], &mut o);
            o
        }),
    ));
    v.push(case(
        "sigmoid",
        vec![vec![5, 7]],
        1e-5,
        Box::new(|t| t[0].sigmoid()),
        Box::new(|x| {
            let mut o = vec![0.0; x[0].len()];
            cpu::sigmoid(&x[0], &mut o);
            o
        }),
    ));
    for (ta, tb, name) in [
        (false, false, "matmul"),
        (true, false, "matmul Aᵀ"),
        (false, true, "matmul Bᵀ"),
        (true, true, "matmul AᵀBᵀ"),
    ] {
        let (m, n, k) = (7, 5, 9);
        let sa = if ta { vec![k, m] } else { vec![m, k] };
        let sb = if tb { vec![n, k] } else { vec![k, n] };
        v.push(case(
            name,
            vec![sa, sb],
            1e-4,
            Box::new(move |t| t[0].matmul_t(&t[1], ta, tb)),
            mm_ref(m, n, k, ta, tb),
        ));
    }
    v
}
