//! Conv plans: the text format, measured plans replacing the launchers' rule, and the tuner.

mod common;
use autorep_kernels::{launch, ConvKey, ConvPass, ConvPlan, ConvPlans, Dtype, KernelError, Tile};
use common::{conv, conv_twins, gpu, gpu_conv_passes, halves, rand_vec, rel_err, tolerance};

fn plan(tile: Tile, splits: usize, prefetch: bool) -> ConvPlan {
    ConvPlan {
        tile,
        splits,
        prefetch,
        staged: false,
    }
}

fn key(pass: ConvPass, p: autorep_kernels::params::ConvParams, f16: bool) -> ConvKey {
    ConvKey {
        pass,
        shape: p,
        f16,
    }
}

#[test]
fn plans_round_trip_through_their_text() {
    let mut plans = ConvPlans::new("Some GPU | Vulkan | driver 1.2");
    plans.plans.insert(
        key(
            ConvPass::WeightGrad,
            conv(128, 3, 32, 32, 64, 3, 1, 1),
            false,
        ),
        plan(Tile::Rows32, 64, true),
    );
    plans.plans.insert(
        key(ConvPass::InputGrad, conv(8, 64, 32, 16, 128, 1, 2, 0), true),
        plan(Tile::CoopWide, 1, false),
    );
    plans.plans.insert(
        key(ConvPass::Forward, conv(2, 16, 8, 8, 24, 3, 1, 1), false),
        ConvPlan {
            staged: true,
            ..plan(Tile::Cols32, 2, false)
        },
    );
    let text = plans.to_text();
    assert!(
        text.contains("input_grad n8 cin64 h32 w16 cout128 k1x1 s2 p0 f16 : tile=coop_wide splits=1 prefetch=0 staged=0"),
        "{text}"
    );
    assert_eq!(ConvPlans::parse(&text, "plans.txt").unwrap(), plans);
    // An adapter line with trailing blanks reads back trimmed, as fingerprints are.
    let bare = ConvPlans::new("Some GPU | Metal |");
    let back = ConvPlans::parse(&(bare.to_text().replace("Metal |", "Metal | ")), "p").unwrap();
    assert_eq!(back, bare);
}

#[test]
fn a_bad_plans_file_names_its_line() {
    let good = "# autorep conv plans\nadapter = X | Vulkan | 1\n";
    let cases = [
        ("hello\n", 1, "not a plans file"),
        ("# autorep conv plans\n", 2, "adapter"),
        (
            &format!("{good}forward n1 cin3 h8 w8 cout4 k3x3 s1 p1 f32 : tile=huge splits=1\n"),
            3,
            "unknown tile 'huge'",
        ),
        (
            &format!("{good}sideways n1 cin3 h8 w8 cout4 k3x3 s1 p1 f32 : tile=rows64 splits=1\n"),
            3,
            "unknown pass",
        ),
        (
            &format!("{good}\nforward n1 cin3 h8 w8 cout4 k3x3 s0 p1 f32 : tile=rows64 splits=1\n"),
            4,
            "not a valid convolution",
        ),
        (
            &format!("{good}forward n1 cin3 h8 w8 cout4 k3x3 s1 p1 f32 : tile=rows64 splits=0\n"),
            3,
            "splits=N",
        ),
        (
            &format!("{good}forward n1 cin3 h8 w8 cout4 k3x3 s1 p1 f32 tile=rows64\n"),
            3,
            "expected 'PASS",
        ),
        (
            &format!("{good}forward n18446744073709551615 cin2 h8 w8 cout4 k3x3 s1 p1 f32 : tile=rows64 splits=1\n"),
            3,
            "up to 1048576",
        ),
        (
            &format!("{good}forward n1 cin3 h8 w8 cout4 k3x3 s1 p18446744073709551615 f32 : tile=rows64 splits=1\n"),
            3,
            "up to 1048576",
        ),
        (
            &format!("{good}forward n1 cin3 h8 w8 cout4 k3x3 s1 p1 f32 : tile=rows64 splits=1 prefetch=yes\n"),
            3,
            "0 or 1",
        ),
    ];
    for (text, line, says) in cases {
        let e = ConvPlans::parse(text, "p.txt").unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, KernelError::Plans { line: l, .. } if l == line) && msg.contains(says),
            "{text:?}: {msg}"
        );
        assert!(msg.starts_with("p.txt line"), "{msg}");
    }
}

#[test]
fn plans_of_another_adapter_are_refused() {
    let Some(g) = gpu() else { return };
    let e = g
        .set_conv_plans(ConvPlans::new("Other GPU | Metal | 9"))
        .unwrap_err();
    assert!(matches!(e, KernelError::PlansAdapter { .. }), "{e}");
    assert!(e.to_string().contains("autorep tune"), "{e}");
    assert!(g.set_conv_plans(g.conv_plans()).is_ok());
    // This adapter's fingerprint survives the file's text.
    let text = g.conv_plans().to_text();
    assert!(g
        .set_conv_plans(ConvPlans::parse(&text, "p").unwrap())
        .is_ok());
}

/// The kernels a profile of `f`'s dispatches ran.
fn kernels_run(g: &autorep_kernels::Gpu, f: impl FnOnce()) -> Vec<String> {
    g.set_profiling(true).unwrap();
    f();
    g.wait().unwrap();
    g.set_profiling(false).unwrap();
    g.take_profile()
        .unwrap()
        .rows
        .into_iter()
        .map(|r| r.kernel)
        .collect()
}

#[test]
fn a_measured_plan_replaces_the_rule_for_its_pass_only() {
    let Some(g) = gpu() else { return };
    let p = conv(2, 12, 9, 7, 20, 3, 2, 1);
    let other = conv(2, 12, 9, 7, 20, 3, 1, 1);
    let rule = |pass, p| launch::conv_plan(&g, pass, p, Dtype::F32).unwrap();
    // On lavapipe the rule takes one SIMT tile, no split, no prefetch.
    let was = rule(ConvPass::WeightGrad, &p);
    let tuned = [
        (ConvPass::Forward, plan(Tile::Rows32, 3, true)),
        (ConvPass::InputGrad, plan(Tile::Rows64, 2, false)),
        (ConvPass::WeightGrad, plan(Tile::Rows32, 5, true)),
    ];
    let mut plans = g.conv_plans();
    for (pass, pl) in tuned {
        assert_ne!(rule(pass, &p), pl);
        plans.plans.insert(key(pass, p, false), pl);
    }
    // A plan this adapter cannot run (tensor cores on lavapipe) is ignored.
    plans.plans.insert(
        key(ConvPass::Forward, other, false),
        plan(Tile::Coop, 1, false),
    );
    g.set_conv_plans(plans).unwrap();
    for (pass, pl) in tuned {
        assert_eq!(rule(pass, &p), pl);
    }
    assert_eq!(rule(ConvPass::Forward, &other).tile, was.tile);
    assert_eq!(
        launch::conv2d_weight_grad_splits(&g, &p, Dtype::F32).unwrap(),
        (5, 5 * p.w_len())
    );
    // The launchers run the plans, and the results stay right.
    let (x, w, dy) = (
        rand_vec(1, p.x_len()),
        rand_vec(2, p.w_len()),
        rand_vec(3, p.y_len()),
    );
    let mut out = None;
    let ran = kernels_run(&g, || {
        out = Some(gpu_conv_passes(&g, &p, [&x, &w, &dy], Dtype::F32));
    });
    for want in ["conv_gemm_tiny", "conv_gemm_small"] {
        assert!(
            ran.iter().any(|k| k.contains(want)),
            "{want} not in {ran:?}"
        );
    }
    assert!(!ran.iter().any(|k| k.contains("conv_gemm ")), "{ran:?}");
    let [y, dx, dw] = out.unwrap();
    let want = conv_twins(&p, &x, &w, &dy);
    for (got, want, what) in [
        (y, &want[0], "y"),
        (dx, &want[1], "dx"),
        (dw, &want[2], "dw"),
    ] {
        let e = rel_err(&got, want);
        assert!(e < 1e-4, "{what}: {e}");
    }
    // A scratch sized for fewer splits than the plan's is an error, not a stray write.
    let (bx, bdy) = (g.upload(&x).unwrap(), g.upload(&dy).unwrap());
    let (small, bdw) = (
        g.alloc_elems(p.w_len(), Dtype::F32).unwrap(),
        g.alloc_elems(p.w_len(), Dtype::F32).unwrap(),
    );
    let e = launch::conv2d_weight_grad(&g, &p, &bx, &bdy, &small, &bdw).unwrap_err();
    assert!(e.to_string().contains("conv2d_weight_grad_splits"), "{e}");
}

#[test]
fn passes_launched_while_collecting_are_listed_once() {
    let Some(g) = gpu() else { return };
    let p = conv(1, 3, 6, 6, 4, 3, 1, 1);
    let q = conv(1, 4, 6, 6, 8, 1, 2, 0);
    let run = |p: autorep_kernels::params::ConvParams| {
        let (x, w, dy) = (
            rand_vec(1, p.x_len()),
            rand_vec(2, p.w_len()),
            rand_vec(3, p.y_len()),
        );
        gpu_conv_passes(&g, &p, [&x, &w, &dy], Dtype::F32);
    };
    run(p);
    g.collect_conv_passes(true);
    run(p);
    run(q);
    run(p);
    let mut seen = g.collect_conv_passes(false);
    seen.sort();
    let mut want: Vec<ConvKey> = [p, q]
        .into_iter()
        .flat_map(|s| ConvPass::ALL.map(|pass| key(pass, s, false)))
        .collect();
    want.sort();
    assert_eq!(seen, want);
    run(q);
    assert!(g.collect_conv_passes(false).is_empty());
}

/// Every plan of every pass against the CPU twins, on one device (so that each pipeline is
/// compiled once: lavapipe takes seconds per variant): in f32 every candidate (each tile, the
/// narrow and 128-row ones included, with and without prefetch or the staged epilogue, at each
/// split, and the direct stem kernel), in f16 each tile at each split; the staged epilogue's
/// results bit for bit those of the direct stores. Then the tuner on the same device: it times
/// every candidate (exhaustive) or fewer (two rounds), never picks a wrong one, and never
/// returns a plan slower than the rule's.
#[test]
fn every_plan_matches_the_cpu_twins_and_the_tuner_times_them() {
    let Some(g) = gpu() else { return };
    let shapes = [
        conv(3, 16, 9, 11, 16, 3, 1, 1), // 16 -> 16: the narrow tile for every pass
        conv(2, 40, 10, 10, 88, 1, 2, 0), // 88 columns: two narrow tiles against two wide
        conv(2, 3, 10, 10, 24, 3, 2, 1), // a stem: the direct input gradient, stride phases
    ];
    for p in shapes {
        // Values f16 holds exactly, so that both precisions share the twins' results.
        let (x, w, dy) = (
            halves(1, p.x_len()),
            halves(2, p.w_len()),
            halves(3, p.y_len()),
        );
        let want = conv_twins(&p, &x, &w, &dy);
        for dtype in [Dtype::F32, Dtype::F16] {
            let f16 = dtype == Dtype::F16;
            let tol = tolerance(dtype, 1e-4);
            let up = |v: &[f32]| g.upload_as(v, dtype).unwrap();
            let (bx, bw, bdy) = (up(&x), up(&w), up(&dy));
            let mut narrow = 0;
            for (i, pass) in ConvPass::ALL.into_iter().enumerate() {
                let k = key(pass, p, f16);
                let mut direct_stores = Vec::new();
                let mut staged_compared = 0;
                for pl in launch::conv_plan_candidates(&g, &k).unwrap() {
                    // f16: each tile, and the staged epilogue of two (each variant is a
                    // pipeline lavapipe compiles for seconds).
                    let f16_staged =
                        pl.splits == 1 && matches!(pl.tile, Tile::Rows256 | Tile::Cols32);
                    if f16 && (pl.prefetch || (pl.staged && !f16_staged)) {
                        continue;
                    }
                    narrow += usize::from(pl.tile == Tile::Cols32);
                    let mut plans = g.conv_plans();
                    plans.plans.clear();
                    plans.plans.insert(k, pl);
                    g.set_conv_plans(plans).unwrap();
                    assert_eq!(launch::conv_plan(&g, pass, &p, dtype).unwrap(), pl);
                    // The output starts as garbage: the plan must write every element.
                    let out = up(&vec![7.5; want[i].len()]);
                    match pass {
                        ConvPass::Forward => launch::conv2d_forward(&g, &p, &bx, &bw, &out),
                        ConvPass::InputGrad => launch::conv2d_input_grad(&g, &p, &bdy, &bw, &out),
                        ConvPass::WeightGrad => {
                            let (_, len) =
                                launch::conv2d_weight_grad_splits(&g, &p, dtype).unwrap();
                            let scratch = g.upload(&vec![7.5; len]).unwrap();
                            launch::conv2d_weight_grad(&g, &p, &bx, &bdy, &scratch, &out)
                        }
                    }
                    .unwrap();
                    let got = g.read_values(&out, 0, want[i].len()).unwrap();
                    let e = rel_err(&got, &want[i]);
                    assert!(e < tol, "{k} {pl}: {e}");
                    let bits: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
                    let twin = ConvPlan {
                        staged: false,
                        ..pl
                    };
                    if pl.staged {
                        let (_, direct) = direct_stores
                            .iter()
                            .find(|(q, _)| *q == twin)
                            .unwrap_or_else(|| panic!("{k} {pl}: no direct-store twin before it"));
                        assert_eq!(&bits, direct, "{k} {pl}: staged");
                        staged_compared += 1;
                    } else {
                        direct_stores.push((pl, bits));
                    }
                }
                if pass != ConvPass::InputGrad || p.cin > 4 {
                    assert!(staged_compared > 0, "{k}: no staged plan compared");
                }
            }
            if p.cout != 24 {
                assert!(narrow >= 2, "{p:?}: the narrow tile is a candidate");
            }
        }
    }
    g.set_conv_plans(ConvPlans::new(&g.report().fingerprint()))
        .unwrap();
    let p = shapes[0];
    for pass in ConvPass::ALL {
        let k = key(pass, p, false);
        let candidates = launch::conv_plan_candidates(&g, &k).unwrap();
        assert!(candidates.len() >= 6, "{k}: {candidates:?}");
        let t = launch::tune_conv_pass(&g, &k, 1, true).unwrap();
        assert!(t.wrong.is_empty(), "{k}: {:?}", t.wrong);
        assert_eq!(t.tried, candidates.len(), "{k}");
        assert_eq!(t.rule.plan, candidates[0], "{k}");
        assert!(t.best.secs <= t.rule.secs, "{k}");
        // The two-round search times the rule, every tile and setting, and fewer plans in all.
        let quick = launch::tune_conv_pass(&g, &k, 1, false).unwrap();
        assert_eq!(quick.rule.plan, candidates[0], "{k}");
        let mut kinds: Vec<_> = candidates.iter().map(|c| c.kind()).collect();
        kinds.sort_by_key(|&(t, a, b)| (t.name(), a, b));
        kinds.dedup();
        assert!(quick.tried >= kinds.len(), "{k}");
        if candidates.iter().any(|c| c.splits > 1) {
            assert!(quick.tried < candidates.len(), "{k}: {}", quick.tried);
        }
    }
}
