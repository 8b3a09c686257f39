//! `attack_batch_with`: the progress callback and the default thread count.

mod attack_models;

use attack_models::Linear;
use intriguing::attack::{
    AttackConfig, BatchOptions, BatchProgress, Target, attack_batch, attack_batch_with,
    default_threads,
};
use ndarray::{Array2, array};
use std::sync::Mutex;

/// Nine rows of a two-class linear model, two of them bad (NaN, outside the box).
fn fixture() -> (Linear, Array2<f64>, Vec<Target>) {
    let m = Linear::two_class(array![1.0, -1.0, 0.5], -0.2);
    let mut x = Array2::from_shape_fn((9, 3), |(i, j)| 0.1 + 0.08 * ((i + 2 * j) % 9) as f64);
    x[[2, 1]] = f64::NAN;
    x[[5, 0]] = 3.0;
    let targets = (0..9).map(|_| Target::Label(1)).collect();
    (m, x, targets)
}

#[test]
fn progress_counts_every_row_in_order_and_the_failures() {
    let (m, x, targets) = fixture();
    let cfg = AttackConfig::default();
    for threads in [1, 2, 4] {
        let seen: Mutex<Vec<BatchProgress>> = Mutex::new(Vec::new());
        let cb = |p: BatchProgress| seen.lock().unwrap().push(p);
        let opts = BatchOptions::new()
            .with_threads(threads)
            .unwrap()
            .with_progress(&cb);
        let res = attack_batch_with(&m, x.view(), &targets, &cfg, &opts).unwrap();
        let seen = seen.into_inner().unwrap();
        let dones: Vec<usize> = seen.iter().map(|p| p.done).collect();
        assert_eq!(dones, (1..=9).collect::<Vec<_>>(), "{threads} threads");
        assert!(seen.iter().all(|p| p.total == 9));
        assert!(seen.windows(2).all(|w| w[0].elapsed <= w[1].elapsed));
        let failed = res
            .iter()
            .filter(|r| !matches!(r, Ok(a) if a.success()))
            .count();
        assert!(failed >= 2, "the NaN and out-of-box rows fail");
        assert_eq!(seen.last().unwrap().failed, failed);
        assert_eq!(seen.last().unwrap().eta(), Some(std::time::Duration::ZERO));
        // Same results as the explicit-thread call.
        assert_eq!(
            format!("{res:?}"),
            format!(
                "{:?}",
                attack_batch(&m, x.view(), &targets, &cfg, 1).unwrap()
            )
        );
    }
}

#[test]
fn default_thread_count_is_the_machines_and_zero_is_rejected() {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(default_threads(), n);
    assert_eq!(BatchOptions::new().threads(), n);
    assert_eq!(BatchOptions::new().with_threads(3).unwrap().threads(), 3);
    assert!(BatchOptions::new().with_threads(0).is_err());
    let (m, x, targets) = fixture();
    let res = attack_batch_with(
        &m,
        x.view(),
        &targets,
        &AttackConfig::default(),
        &BatchOptions::new(),
    )
    .unwrap();
    assert_eq!(res.len(), 9);
}

#[test]
fn rate_and_eta_before_and_during_a_run() {
    let p = BatchProgress {
        done: 0,
        total: 10,
        failed: 0,
        elapsed: std::time::Duration::ZERO,
    };
    assert_eq!(p.rate(), 0.0);
    assert_eq!(p.eta(), None);
    let p = BatchProgress {
        done: 4,
        total: 10,
        failed: 1,
        elapsed: std::time::Duration::from_secs(2),
    };
    assert_eq!(p.rate(), 2.0);
    assert_eq!(p.eta(), Some(std::time::Duration::from_secs(3)));
}
