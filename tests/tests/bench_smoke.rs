//! A smoke pass of `session-tools bench` with a tiny N: every workload runs on both sides and
//! the report is complete. It asserts no time (speed is measured by the benchmark itself).

use session_tools::bench::{Options, run, scaling};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_runs_and_reports() {
    let report = run(&Options {
        n: 40,
        stream_rows: 3_000,
        sqla: None,
        repeat: 1,
        // Its sides run as child processes of the session-tools binary, not of this test.
        memory_n: 0,
        replica_reads: true,
        only: Vec::new(),
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = report.rows.iter().map(|r| r.name).collect();
    assert_eq!(
        names,
        [
            "insert_flush",
            "load_eager",
            "get_by_pk",
            "update_dirty",
            "request_mix",
            "get_many",
            "graph_flush",
            "request_serial",
            "request_mix_pgbouncer",
            "factory_overhead",
            "proxy_10m_calls",
            "stream"
        ],
        "hand-written rows come first in a run, then ours fill in beside them"
    );
    for row in &report.rows {
        assert!(row.ours.is_some_and(|s| s > 0.0), "{row:?}");
        let compared = !matches!(row.name, "factory_overhead" | "stream");
        assert_eq!(row.hand.is_some(), compared, "{row:?}");
    }
    let json = report.json();
    for name in &names {
        assert!(json.contains(&format!("\"workload\":\"{name}\"")), "{json}");
    }
    assert!(report.table().lines().count() >= names.len() + 2);
    assert!(report.svg().starts_with("<svg"));
    // Skipped (with a note) only where no standby can be started.
    if let Some(r) = &report.replica_reads {
        assert!(
            r.primary > 0.0 && r.replica > 0.0 && r.replica_max_lag > 0.0,
            "{r:?}"
        );
        assert!(json.contains("\"replica_s\""), "{json}");
    }
}

/// `bench --only`: the workloads named, and insert_flush, which writes the rows they read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_runs_the_workloads_named_and_the_seeding_one() {
    let report = run(&Options {
        n: 40,
        stream_rows: 3_000,
        sqla: None,
        repeat: 1,
        memory_n: 0,
        replica_reads: false,
        only: vec!["request_serial".into(), "get_many".into()],
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = report.rows.iter().map(|r| r.name).collect();
    assert_eq!(names, ["insert_flush", "get_many", "request_serial"]);
    for row in &report.rows {
        assert!(row.ours.is_some() && row.hand.is_some(), "{row:?}");
    }
}

/// `bench --sizes`: the three workloads at each size, seconds per object on both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sizes_mode_reports_seconds_per_object_at_each_size() {
    let scaling = scaling(&[20, 40]).await.unwrap_or_else(|e| panic!("{e}"));
    let points: Vec<(usize, &str)> = scaling.points.iter().map(|p| (p.n, p.workload)).collect();
    assert_eq!(
        points,
        [
            (20, "insert_flush"),
            (20, "load_eager"),
            (20, "update_dirty"),
            (40, "insert_flush"),
            (40, "load_eager"),
            (40, "update_dirty")
        ]
    );
    for p in &scaling.points {
        assert!(p.ours > 0.0 && p.hand > 0.0, "{p:?}");
    }
    assert_eq!(scaling.table().lines().count(), 2 + points.len());
    assert!(scaling.json().contains("\"ours_s_per_object\""));
}
