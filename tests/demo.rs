//! `autorep demo` end to end at a reduced size on the CPU: every row says how it met the
//! budget, and a projected network is reported as such.

use autorep::demo::{demo_table, pipeline_demo, PipelineDemo};
use autorep::Device;

#[test]
fn pipeline_demo_reports_every_method_and_how_it_met_the_budget() {
    let out = std::env::temp_dir().join(format!("autorep-demo-{}", std::process::id()));
    let d = PipelineDemo {
        baseline_epochs: 1,
        replace_epochs: 1,
        snl_epochs: 1,
        finetune_epochs: 1,
        budget_fraction: 0.1,
        limit: Some((640, 200)),
        batch: 64,
        out: out.clone(),
        quiet: true,
    };
    let rows = pipeline_demo(&Device::Cpu, &d).unwrap();
    eprintln!("{}", demo_table(&rows));
    assert_eq!(rows.len(), 4);
    let total = rows[0].row.relu_total;
    assert_eq!(
        rows[0].row.relus as usize, total,
        "the baseline keeps every ReLU"
    );
    let budget = (total as f64 * 0.1).round() as usize;
    for d in &rows[1..] {
        let r = &d.row;
        assert_eq!(r.budget, Some(budget), "{r:?}");
        // One epoch is too short to promise selection; the row must say which it was.
        let file = r.checkpoint.file_name().unwrap().to_str().unwrap();
        if r.reached_by_selection {
            assert_eq!((file, r.projected_gates), ("best.safetensors", 0), "{r:?}");
        } else {
            assert!(
                r.projected_gates > 0 && file == "projected.safetensors",
                "{r:?}"
            );
        }
        assert!(r.top1 > 0.0, "{}", r.method);
        assert!(
            d.crypten_bytes < rows[0].crypten_bytes,
            "{}: replacing ReLUs cuts communication",
            r.method
        );
    }
    assert!(out.join("autorep/metrics.jsonl").exists() && out.join("summary.json").exists());
    let _ = std::fs::remove_dir_all(&out);
}
