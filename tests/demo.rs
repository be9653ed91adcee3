//! `autorep demo` end to end at a reduced size on the CPU: every method meets the budget.

use autorep::demo::{demo_table, pipeline_demo, PipelineDemo};
use autorep::Device;

#[test]
fn pipeline_demo_meets_the_budget_for_every_method() {
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
    let total = rows[0].relu_total;
    assert_eq!(
        rows[0].relus as usize, total,
        "the baseline keeps every ReLU"
    );
    let budget = (total as f64 * 0.1).round() as u64;
    for r in &rows[1..] {
        assert!(
            r.relus <= budget,
            "{}: {} ReLUs over the budget {budget}",
            r.method,
            r.relus
        );
        assert!(r.top1 > 0.0, "{}", r.method);
        assert!(
            r.crypten_bytes < rows[0].crypten_bytes,
            "{}: replacing ReLUs cuts communication",
            r.method
        );
    }
    assert!(
        out.join("autorep/metrics.jsonl").exists() && out.join("snl/best.safetensors").exists()
    );
    let _ = std::fs::remove_dir_all(&out);
}
