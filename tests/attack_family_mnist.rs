//! DeepFool, FGSM and PGD on an FC100-100-10 trained briefly on MNIST: every returned
//! adversarial is re-checked here (re-classified, finite, inside [0, 1], within ε),
//! independently of the attacks' own verification.

#[path = "mnist_mlp/mod.rs"]
mod mnist_mlp;

use intriguing::ClassifierExt;
use intriguing::attack::{
    BoundedAttack, DeepFoolConfig, FgsmConfig, MinimalDistortions, Norm, PgdConfig, RowResult,
    bounded_accuracy_curve, deepfool, fgsm, pgd,
};
use intriguing::models::Mlp;
use ndarray::{Array2, s};
use std::sync::OnceLock;

struct Fixture {
    mlp: Mlp,
    x: Array2<f64>,
    y: Vec<usize>,
}

/// FC100-100-10 with the preset's recipe, shortened to 2 epochs on 10 000 images; 100 test
/// images.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let (mlp, mnist) = mnist_mlp::brief_fc100(10_000, 100, 11, 2);
        Fixture {
            mlp,
            x: mnist.test_images.slice(s![..100, ..]).to_owned(),
            y: mnist.test_labels[..100].to_vec(),
        }
    })
}

/// Independent re-check of one result; returns the distortion in `norm` when successful.
fn recheck(f: &Fixture, i: usize, r: &RowResult, norm: Norm, eps: Option<f64>) -> Option<f64> {
    let adv = r.adversarial.as_ref()?;
    assert!(
        adv.input
            .iter()
            .all(|v| v.is_finite() && (0.0..=1.0).contains(v)),
        "row {i} leaves [0, 1]"
    );
    let pred = f.mlp.predict(adv.input.view()).unwrap();
    assert_ne!(pred, f.y[i], "row {i}: re-classified as the true label");
    assert_eq!(pred, adv.label, "row {i}");
    let r_vec = &adv.input - &f.x.row(i);
    let d = norm.of(r_vec.view());
    assert!((d - norm.of_adversarial(adv)).abs() < 1e-12);
    if let Some(eps) = eps {
        assert!(d <= eps * (1.0 + 1e-12), "row {i}: {d} > ε = {eps}");
    }
    Some(d)
}

#[test]
fn deepfool_on_mnist_returns_verified_adversarials() {
    let f = fixture();
    for norm in [Norm::L2, Norm::Linf] {
        let cfg = DeepFoolConfig::default().with_norm(norm);
        let res = deepfool(&f.mlp, f.x.view(), &f.y, &cfg, 2).unwrap();
        let again = deepfool(&f.mlp, f.x.view(), &f.y, &cfg, 1).unwrap();
        let mut found = 0;
        let mut ds = Vec::new();
        for (i, (r, r1)) in res.iter().zip(&again).enumerate() {
            let r = r.as_ref().unwrap();
            assert_eq!(
                r,
                r1.as_ref().unwrap(),
                "row {i}: threads changed the result"
            );
            if let Some(d) = recheck(f, i, r, norm, None) {
                found += 1;
                ds.push(d);
                assert_eq!(r.already_adversarial, d == 0.0);
            }
        }
        assert!(found >= 98, "{norm:?}: DeepFool fooled only {found}/100");
        ds.sort_by(f64::total_cmp);
        let median = ds[ds.len() / 2];
        // Orders of magnitude of a weak MNIST MLP (the paper's FC500-150-10: ρ ≈ 0.11, ‖x‖ ≈ 9).
        match norm {
            Norm::L2 => assert!((0.2..3.0).contains(&median), "median L2 {median}"),
            Norm::Linf => assert!((0.01..0.3).contains(&median), "median L∞ {median}"),
        }
    }
}

#[test]
fn fgsm_and_pgd_on_mnist_are_verified_and_pgd_is_stronger() {
    let f = fixture();
    for (norm, eps) in [(Norm::Linf, 0.05), (Norm::L2, 1.0)] {
        let fg = fgsm(
            &f.mlp,
            f.x.view(),
            &f.y,
            eps,
            &FgsmConfig::default().with_norm(norm),
            2,
        )
        .unwrap();
        let cfg = PgdConfig::default().with_norm(norm).with_seed(1);
        let pg = pgd(&f.mlp, f.x.view(), &f.y, eps, &cfg, 2).unwrap();
        let (mut nf, mut np) = (0, 0);
        for i in 0..100 {
            let (a, b) = (fg[i].as_ref().unwrap(), pg[i].as_ref().unwrap());
            nf += usize::from(recheck(f, i, a, norm, Some(eps)).is_some());
            np += usize::from(recheck(f, i, b, norm, Some(eps)).is_some());
            assert_eq!(a.success(), a.adversarial.is_some());
        }
        assert!(np >= nf, "{norm:?} ε = {eps}: PGD {np} < FGSM {nf}");
        assert!(np > 10 && np < 100, "{norm:?}: PGD fooled {np}/100");
    }
}

#[test]
fn robust_accuracy_from_deepfool_and_pgd_on_mnist() {
    let f = fixture();
    let df: Vec<RowResult> = deepfool(
        &f.mlp,
        f.x.view(),
        &f.y,
        &DeepFoolConfig::default().with_norm(Norm::Linf),
        2,
    )
    .unwrap()
    .into_iter()
    .map(|r| r.unwrap())
    .collect();
    let minimal = MinimalDistortions::from_rows(&df, Norm::Linf).unwrap();
    let grid = [0.0, 0.02, 0.05, 0.1, 0.25];
    let from_df = minimal.curve(&grid).unwrap();
    let pgd_cfg = PgdConfig::default().with_seed(2);
    let from_pgd = bounded_accuracy_curve(
        &f.mlp,
        f.x.view(),
        &f.y,
        &BoundedAttack::Pgd(pgd_cfg),
        &grid,
        2,
    )
    .unwrap();
    let clean = 1.0 - f.mlp.error_rate(f.x.view(), &f.y).unwrap();
    assert!((from_df[0] - clean).abs() < 1e-12);
    assert!((from_pgd[0] - clean).abs() < 1e-12);
    for w in from_df.windows(2).chain(from_pgd.windows(2)) {
        assert!(
            w[1] <= w[0],
            "curves are non-increasing: {from_df:?} {from_pgd:?}"
        );
    }
    // Each curve is an upper bound on the true robust accuracy; at ε = 0.25 both attacks
    // leave few robust rows on this briefly trained model.
    assert!(
        from_df[4] < 0.1 && from_pgd[4] < 0.1,
        "{from_df:?} {from_pgd:?}"
    );
    assert!(from_df[2] > from_df[4] && from_pgd[2] > from_pgd[4]);
}
