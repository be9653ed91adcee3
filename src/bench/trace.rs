//! A GPU profile's timeline in the Chrome trace format (Perfetto, chrome://tracing): one
//! complete event per timed dispatch, named after its layer pass where the launcher labelled
//! it, on the device's clock.

use autorep_kernels::Profile;
use serde_json::{json, Value};

/// The trace of `profile`'s events (microseconds from the first timed dispatch).
pub fn chrome_trace(profile: &Profile) -> Value {
    let events: Vec<Value> = profile
        .events
        .iter()
        .map(|e| {
            json!({
                "name": e.label.as_deref().unwrap_or(&e.kernel),
                "cat": e.kernel,
                "ph": "X",
                "ts": e.start_s * 1e6,
                "dur": (e.end_s - e.start_s) * 1e6,
                "pid": 1,
                "tid": 1,
                "args": { "kernel": e.kernel, "pass": e.label },
            })
        })
        .collect();
    json!({ "traceEvents": events, "displayTimeUnit": "ns" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use autorep_kernels::ProfileEvent;

    #[test]
    fn every_event_becomes_a_complete_event_in_microseconds() {
        let profile = Profile {
            events: vec![
                ProfileEvent {
                    kernel: "conv_gemm f32".into(),
                    label: Some("conv forward 3x3 3->16 @32 s1".into()),
                    start_s: 0.0,
                    end_s: 2.5e-6,
                },
                ProfileEvent {
                    kernel: "fill f32".into(),
                    label: None,
                    start_s: 3e-6,
                    end_s: 4e-6,
                },
            ],
            ..Default::default()
        };
        let t = chrome_trace(&profile);
        let ev = t["traceEvents"].as_array().unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0]["name"], "conv forward 3x3 3->16 @32 s1");
        assert_eq!(ev[0]["args"]["kernel"], "conv_gemm f32");
        assert_eq!(ev[1]["name"], "fill f32");
        assert!(ev.iter().all(|e| e["ph"] == "X"));
        assert!((ev[0]["dur"].as_f64().unwrap() - 2.5).abs() < 1e-9);
        assert!((ev[1]["ts"].as_f64().unwrap() - 3.0).abs() < 1e-9);
    }
}
