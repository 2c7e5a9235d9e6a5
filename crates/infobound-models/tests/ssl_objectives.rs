//! The SSL objectives against values computed independently with PyTorch, their gradients, a
//! symmetry, and their input checks.
//!
//! Reference numbers come from this script, run with /root/torch-cpu-venv/bin/python
//! (torch 2, float64); `view(v, B, d)` is reproduced by [`view`] below:
//!
//! ```python
//! import math, torch
//! import torch.nn.functional as F
//! torch.set_default_dtype(torch.float64)
//! def view(v, b, d):
//!     return torch.tensor([[math.sin(1.3*(v+1) + 0.7*i + 0.37*j*j) + 0.1*v for j in range(d)] for i in range(b)])
//! def score(Z, eta=0.01, tmin=0.1):
//!     B = Z.shape[0]; C = Z @ Z.T
//!     D = (1 - C).reshape(-1); k = B*B//2
//!     tau = torch.clamp(torch.topk(D, k).values[-1], min=tmin)
//!     K = torch.exp(C / tau); Psi = K.sum(1, keepdim=True) * Z / tau
//!     return -torch.linalg.solve(K + eta*torch.eye(B), Psi), tau
//! B, d = 6, 4
//! on = [view(v, B, d) for v in range(3)]        # 2 global + 1 local online views
//! tg = [view(v + 10, B, d) for v in range(2)]   # target projections
//! pr = [view(v + 20, B, d) for v in range(2)]   # predictor outputs
//! z = [F.normalize(x, dim=1) for x in on]; t = [F.normalize(x, dim=1) for x in tg]
//! m = (t[0] + t[1]) / 2
//! A = ((z[0]*t[1]).sum(1).mean() + (z[1]*t[0]).sum(1).mean() + (z[2]*m).sum(1).mean()) / 3
//! E, taus = 0, []
//! for zv in z:
//!     S, tau = score(zv); taus.append(tau.item()); E = E + (-S*zv).sum(1).mean()
//! E = E / 3
//! print("mveb alignment", A.item(), "entropy", E.item(), "loss(l=0.01)", (-A - 0.01*E).item(), "mean tau", sum(taus)/3)
//! cos = lambda a, b: F.cosine_similarity(a, b, dim=1)
//! print("simsiam", (-0.5*(cos(pr[0], on[1]).mean() + cos(pr[1], on[0]).mean())).item())
//! print("byol", ((2 - 2*cos(pr[0], tg[1])) + (2 - 2*cos(pr[1], tg[0]))).mean().item())
//! bn = lambda x: (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + 1e-5)
//! C = bn(on[0]).T @ bn(on[1]) / B
//! on_d = ((1 - torch.diagonal(C))**2).sum(); off = (C**2).sum() - (torch.diagonal(C)**2).sum()
//! print("barlow on", on_d.item(), "off", off.item(), "loss(l=0.0051)", (on_d + 0.0051*off).item())
//! for lam in (0.0, 0.01):
//!     leaves = [x.clone().requires_grad_(True) for x in on]
//!     zz = [F.normalize(x, dim=1) for x in leaves]
//!     A = ((zz[0]*t[1]).sum(1).mean() + (zz[1]*t[0]).sum(1).mean() + (zz[2]*m).sum(1).mean()) / 3
//!     E = sum((-score(zv.detach())[0]*zv).sum(1).mean() for zv in zz) / 3
//!     (-A - lam*E).backward()
//!     print("mveb grad lambda", lam, "view0 row0", leaves[0].grad[0].tolist(), "view2 row1", leaves[2].grad[1].tolist())
//! ```

use burn::tensor::{DType, Device, Tensor, TensorData};
use infobound_models::ssl::{
    BarlowTwinsConfig, ByolConfig, LocalScoreSupport, MvebConfig, ScoreSupport, SimSiamConfig,
    SslObjectiveConfig, SslViews, barlow_twins_loss, byol_loss, cross_view_pairs, simsiam_loss,
};
use infobound_models::{LossOutput, ModelError};

const BATCH: usize = 6;
const DIM: usize = 4;

fn device() -> Device {
    Device::flex().autodiff()
}

/// The script's `view(v, B, d)`, optionally with its rows reordered by `order`.
fn view_rows(v: usize, order: &[usize], device: &Device) -> Tensor<2> {
    let values: Vec<f64> = order
        .iter()
        .flat_map(|&i| {
            (0..DIM).map(move |j| {
                (1.3 * (v as f64 + 1.0) + 0.7 * i as f64 + 0.37 * (j * j) as f64).sin()
                    + 0.1 * v as f64
            })
        })
        .collect();
    Tensor::from_data(
        TensorData::new(values, [order.len(), DIM]),
        (device, DType::F64),
    )
}

fn view(v: usize, device: &Device) -> Tensor<2> {
    view_rows(v, &(0..BATCH).collect::<Vec<_>>(), device)
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.try_into_vec_as::<f64>().expect("tensor readback")
}

/// A logged term read back from its detached `[1]` tensor (`loss` is the loss itself).
fn term(out: &LossOutput, name: &str) -> f64 {
    if name == "loss" {
        return host(out.loss.clone())[0];
    }
    let tensor = &out
        .terms
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("term {name} missing"))
        .1;
    host(tensor.clone())[0]
}

fn assert_close(what: &str, actual: f64, expected: f64, rtol: f64) {
    assert!(
        (actual - expected).abs() <= rtol * expected.abs().max(1e-3),
        "{what}: {actual} vs reference {expected}"
    );
}

fn mveb_views(online: Vec<Tensor<2>>, device: &Device) -> SslViews {
    SslViews {
        online,
        predictions: None,
        target: Some(vec![view(10, device), view(11, device)]),
    }
}

#[test]
fn mveb_matches_pytorch_reference() {
    let device = device();
    let objective = SslObjectiveConfig::Mveb(MvebConfig::default())
        .init()
        .unwrap();
    let online = (0..3).map(|v| view(v, &device)).collect();
    let out = objective.loss(&mveb_views(online, &device)).unwrap();
    assert_close(
        "alignment",
        term(&out, "alignment"),
        0.09916279385793873,
        1e-9,
    );
    assert_close(
        "entropy",
        term(&out, "entropy_surrogate"),
        2.4714385158936296,
        1e-7,
    );
    assert_close("loss", term(&out, "loss"), -0.12387717901687503, 1e-7);
    // τ is computed in f64 on the host and logged as an f32 term: f32 rounding (6e-8).
    assert_close(
        "mean tau",
        term(&out, "kernel_width"),
        0.6804545575652305,
        1e-7,
    );
}

/// Gradient of the MVEB loss with respect to the raw online projections, against PyTorch:
/// with λ = 0 it is the alignment gradient alone, with λ = 0.01 the entropy term shifts it.
#[test]
fn mveb_gradient_matches_pytorch_with_and_without_entropy() {
    let cases: [(f64, [f64; 4], [f64; 4]); 2] = [
        (
            0.0,
            [
                -0.01573115040359613,
                -0.009393701874933057,
                -0.000316179081079903,
                -0.024701035163336806,
            ],
            [
                -0.017638850186616643,
                -0.012832685516469782,
                -0.004329311826753762,
                -0.019923143650051767,
            ],
        ),
        (
            0.01,
            [
                -0.015340846534324468,
                -0.009485569187532305,
                -0.0015359377544927847,
                -0.024848377229027288,
            ],
            [
                -0.01699820994625409,
                -0.012538354344861575,
                -0.0047166741100889255,
                -0.019310394480358598,
            ],
        ),
    ];
    let device = device();
    for (lambda, view0_row0, view2_row1) in cases {
        let objective = SslObjectiveConfig::Mveb(MvebConfig {
            entropy_weight: lambda,
            ..MvebConfig::default()
        })
        .init()
        .unwrap();
        let leaves: Vec<Tensor<2>> = (0..3).map(|v| view(v, &device).require_grad()).collect();
        let out = objective
            .loss(&mveb_views(leaves.clone(), &device))
            .unwrap();
        let grads = out.loss.backward();
        let g0 = host(leaves[0].grad(&grads).unwrap());
        let g2 = host(leaves[2].grad(&grads).unwrap());
        for j in 0..DIM {
            assert_close(
                &format!("λ={lambda} dL/dz0[0,{j}]"),
                g0[j],
                view0_row0[j],
                1e-6,
            );
            assert_close(
                &format!("λ={lambda} dL/dz2[1,{j}]"),
                g2[DIM + j],
                view2_row1[j],
                1e-6,
            );
        }
    }
}

/// A stand-in for the trainer's gathering exchange: every view's whole-batch unit embeddings,
/// with this shard's first row.
struct WholeBatchSupport {
    views: Vec<Tensor<2>>,
    first_row: usize,
}

impl ScoreSupport for WholeBatchSupport {
    fn samples(&self, view: usize, _local: Tensor<2>) -> Result<(Tensor<2>, usize), ModelError> {
        Ok((self.views[view].clone(), self.first_row))
    }
}

fn unit_rows(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt();
    x / norm
}

/// Rows of shard `shard` (of two) of online views 0..3, as gradient leaves.
fn shard_leaves(shard: usize, device: &Device) -> Vec<Tensor<2>> {
    let half = BATCH / 2;
    (0..3)
        .map(|v| view(v, device).narrow(0, shard * half, half).require_grad())
        .collect()
}

/// The two shards' gradients with gathered `what` equal the whole batch's (`expected`, to
/// 1e-9 of its largest entry); with per-shard `what` they differ by more than 1e-3 of it.
fn assert_only_gathered_reproduces(
    expected: &[f64],
    gathered: &[f64],
    per_shard: &[f64],
    what: &str,
) {
    let max_difference = |actual: &[f64]| {
        actual
            .iter()
            .zip(expected)
            .map(|(a, e)| (a - e).abs())
            .fold(0.0f64, f64::max)
    };
    let scale = expected.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    let gathered = max_difference(gathered);
    assert!(
        gathered <= 1e-9 * scale,
        "gathered {what}: max difference {gathered}, scale {scale}"
    );
    let per_shard = max_difference(per_shard);
    assert!(
        per_shard > 1e-3 * scale,
        "per-shard {what} should differ, got {per_shard}"
    );
}

/// Data parallelism with gathered score samples: the two shards' losses, each scaled by 1/2,
/// give every row the gradient the whole batch gives it. With per-shard samples (the paper's
/// per-device estimate) the entropy term differs, so the same comparison fails.
#[test]
fn mveb_shards_with_gathered_samples_reproduce_the_whole_batch_gradient() {
    let device = device();
    let objective = SslObjectiveConfig::Mveb(MvebConfig {
        entropy_weight: 1.0,
        ..MvebConfig::default()
    })
    .init()
    .unwrap();
    let whole: Vec<Tensor<2>> = (0..3).map(|v| view(v, &device).require_grad()).collect();
    let out = objective.loss(&mveb_views(whole.clone(), &device)).unwrap();
    let grads = out.loss.backward();
    let expected: Vec<f64> = whole
        .iter()
        .flat_map(|z| host(z.grad(&grads).unwrap()))
        .collect();
    let units: Vec<Tensor<2>> = (0..3).map(|v| unit_rows(view(v, &device))).collect();
    let half = BATCH / 2;
    let shard_gradients = |gathered: bool| -> Vec<f64> {
        let mut rows = vec![Vec::new(); 3];
        for shard in 0..2 {
            let leaves = shard_leaves(shard, &device);
            let views = SslViews {
                online: leaves.clone(),
                predictions: None,
                target: Some(
                    (10..12)
                        .map(|v| view(v, &device).narrow(0, shard * half, half))
                        .collect(),
                ),
            };
            let support = WholeBatchSupport {
                views: units.clone(),
                first_row: shard * half,
            };
            let support: &dyn ScoreSupport = if gathered {
                &support
            } else {
                &LocalScoreSupport
            };
            let loss = objective.loss_with_support(&views, support).unwrap().loss;
            let grads = loss.mul_scalar(0.5).backward();
            for (v, leaf) in leaves.iter().enumerate() {
                rows[v].extend(host(leaf.grad(&grads).unwrap()));
            }
        }
        rows.into_iter().flatten().collect()
    };
    assert_only_gathered_reproduces(
        &expected,
        &shard_gradients(true),
        &shard_gradients(false),
        "samples",
    );
}

/// Barlow Twins with gathered projections: two shards' gradients, each of half the loss as a
/// two-replica step weights them, are the whole batch's gradient (the paper's code all-reduces
/// the cross-correlation); per-shard projections give another gradient.
#[test]
fn barlow_twins_shards_with_gathered_projections_reproduce_the_whole_batch_gradient() {
    let device = device();
    let objective = SslObjectiveConfig::BarlowTwins(Default::default())
        .init()
        .unwrap();
    let whole: Vec<Tensor<2>> = (0..3).map(|v| view(v, &device).require_grad()).collect();
    let views = |online: Vec<Tensor<2>>| SslViews {
        online,
        predictions: None,
        target: None,
    };
    let out = objective.loss(&views(whole.clone())).unwrap();
    let whole_loss = host(out.loss.clone().reshape([1]))[0];
    let grads = out.loss.backward();
    let expected: Vec<f64> = whole
        .iter()
        .flat_map(|z| host(z.grad(&grads).unwrap()))
        .collect();
    let half = BATCH / 2;
    let shard_gradients = |gathered: bool| -> Vec<f64> {
        let mut rows = vec![Vec::new(); 3];
        for shard in 0..2 {
            let leaves = shard_leaves(shard, &device);
            let support = WholeBatchSupport {
                views: (0..3).map(|v| view(v, &device)).collect(),
                first_row: shard * half,
            };
            let support: &dyn ScoreSupport = if gathered {
                &support
            } else {
                &LocalScoreSupport
            };
            let out = objective
                .loss_with_support(&views(leaves.clone()), support)
                .unwrap();
            if gathered {
                let value = host(out.loss.clone().reshape([1]))[0];
                assert!((value - whole_loss).abs() <= 1e-12 * whole_loss.abs());
            }
            let grads = out.loss.mul_scalar(0.5).backward();
            for (v, leaf) in leaves.iter().enumerate() {
                rows[v].extend(host(leaf.grad(&grads).unwrap()));
            }
        }
        rows.into_iter().flatten().collect()
    };
    assert_only_gathered_reproduces(
        &expected,
        &shard_gradients(true),
        &shard_gradients(false),
        "projections",
    );
}

#[test]
fn mveb_targets_receive_no_gradient() {
    let device = device();
    let objective = SslObjectiveConfig::default().init().unwrap();
    let targets: Vec<Tensor<2>> = (10..12).map(|v| view(v, &device).require_grad()).collect();
    let views = SslViews {
        online: (0..2).map(|v| view(v, &device).require_grad()).collect(),
        predictions: None,
        target: Some(targets.clone()),
    };
    let grads = objective.loss(&views).unwrap().loss.backward();
    assert!(targets.iter().all(|t| t.grad(&grads).is_none()));
}

/// Reordering the batch the same way in every view (online and target) leaves the loss,
/// its terms and the kernel width unchanged.
#[test]
fn mveb_is_invariant_to_a_consistent_batch_permutation() {
    let device = device();
    let objective = SslObjectiveConfig::default().init().unwrap();
    let identity: Vec<usize> = (0..BATCH).collect();
    let permutation = [3, 0, 5, 1, 4, 2];
    let run = |order: &[usize]| {
        let views = SslViews {
            online: (0..4).map(|v| view_rows(v, order, &device)).collect(),
            predictions: None,
            target: Some(vec![
                view_rows(10, order, &device),
                view_rows(11, order, &device),
            ]),
        };
        objective.loss(&views).unwrap()
    };
    let (base, permuted) = (run(&identity), run(&permutation));
    for (name, _) in &base.terms {
        assert_close(name, term(&permuted, name), term(&base, name), 1e-6);
    }
    // A permutation applied to the online views only breaks the pairing, so the loss moves.
    let shuffled = SslViews {
        online: vec![
            view_rows(0, &permutation, &device),
            view_rows(1, &identity, &device),
        ],
        predictions: None,
        target: Some(vec![view(10, &device), view(11, &device)]),
    };
    let unpaired = objective.loss(&shuffled).unwrap();
    let paired = objective
        .loss(&mveb_views(
            vec![view(0, &device), view(1, &device)],
            &device,
        ))
        .unwrap();
    assert!((term(&unpaired, "alignment") - term(&paired, "alignment")).abs() > 1e-3);
}

#[test]
fn simsiam_matches_pytorch_and_stops_gradients_at_the_projections() {
    let device = device();
    let objective = SslObjectiveConfig::SimSiam(SimSiamConfig {})
        .init()
        .unwrap();
    let online: Vec<Tensor<2>> = (0..2).map(|v| view(v, &device).require_grad()).collect();
    let predictions: Vec<Tensor<2>> = (20..22).map(|v| view(v, &device).require_grad()).collect();
    let views = SslViews {
        online: online.clone(),
        predictions: Some(predictions.clone()),
        target: None,
    };
    let out = objective.loss(&views).unwrap();
    assert_close("simsiam", term(&out, "loss"), 0.05877110792129803, 1e-9);
    let grads = out.loss.backward();
    assert!(online.iter().all(|z| z.grad(&grads).is_none()));
    assert!(predictions.iter().all(|p| p.grad(&grads).is_some()));
}

#[test]
fn byol_matches_pytorch() {
    let device = device();
    let objective = SslObjectiveConfig::Byol(ByolConfig::default())
        .init()
        .unwrap();
    let views = SslViews {
        online: (0..2).map(|v| view(v, &device)).collect(),
        predictions: Some((20..22).map(|v| view(v, &device)).collect()),
        target: Some((10..12).map(|v| view(v, &device)).collect()),
    };
    let out = objective.loss(&views).unwrap();
    assert_close("byol", host(out.loss)[0], 0.8266051204651553, 1e-9);
}

#[test]
fn barlow_twins_matches_pytorch() {
    let device = device();
    let objective = SslObjectiveConfig::BarlowTwins(BarlowTwinsConfig::default())
        .init()
        .unwrap();
    let views = SslViews {
        online: (0..2).map(|v| view(v, &device)).collect(),
        predictions: None,
        target: None,
    };
    let out = objective.loss(&views).unwrap();
    assert_close("on", term(&out, "on_diagonal"), 2.458413390858, 1e-9);
    assert_close("off", term(&out, "off_diagonal"), 6.54638095082856, 1e-9);
    assert_close("loss", host(out.loss)[0], 2.4917999337072256, 1e-9);
}

/// solo-learn's `scale_loss` (0.1 on its CIFAR configs) multiplies the whole loss (so its
/// gradient) and leaves the logged terms unweighted; a non-positive scale is rejected.
#[test]
fn barlow_twins_loss_scale_multiplies_the_loss_only() {
    let device = device();
    let views = SslViews {
        online: (0..2).map(|v| view(v, &device)).collect(),
        predictions: None,
        target: None,
    };
    let scaled = SslObjectiveConfig::BarlowTwins(BarlowTwinsConfig {
        loss_scale: 0.1,
        ..BarlowTwinsConfig::default()
    })
    .init()
    .unwrap();
    let out = scaled.loss(&views).unwrap();
    assert_close("on", term(&out, "on_diagonal"), 2.458413390858, 1e-9);
    assert_close("scaled loss", host(out.loss)[0], 0.24917999337072256, 1e-6);
    for bad in [0.0, -1.0, f64::NAN] {
        let config = SslObjectiveConfig::BarlowTwins(BarlowTwinsConfig {
            loss_scale: bad,
            ..BarlowTwinsConfig::default()
        });
        assert!(
            matches!(config.init(), Err(ModelError::InvalidConfig(_))),
            "{bad}"
        );
    }
}

#[test]
fn method_traits() {
    let mveb = SslObjectiveConfig::default();
    let simsiam = SslObjectiveConfig::SimSiam(SimSiamConfig {});
    let byol = SslObjectiveConfig::Byol(ByolConfig::default());
    let barlow = SslObjectiveConfig::BarlowTwins(BarlowTwinsConfig::default());
    let traits = |c: &SslObjectiveConfig| {
        (
            c.uses_target_network(),
            c.uses_predictor(),
            c.base_momentum(),
        )
    };
    assert_eq!(traits(&mveb), (true, false, Some(0.996)));
    assert_eq!(traits(&simsiam), (false, true, None));
    assert_eq!(traits(&byol), (true, true, Some(0.996)));
    assert_eq!(traits(&barlow), (false, false, None));
    let json = r#"{"kind":"mveb","entropy_weight":0.02}"#;
    let parsed: SslObjectiveConfig = serde_json::from_str(json).unwrap();
    assert_eq!(
        parsed,
        SslObjectiveConfig::Mveb(MvebConfig {
            entropy_weight: 0.02,
            ..MvebConfig::default()
        })
    );
}

#[test]
fn bad_inputs_are_errors() {
    let device = device();
    let v = |i| view(i, &device);
    let mveb = SslObjectiveConfig::default().init().unwrap();
    let simsiam = SslObjectiveConfig::SimSiam(SimSiamConfig {})
        .init()
        .unwrap();
    let byol = SslObjectiveConfig::Byol(ByolConfig::default())
        .init()
        .unwrap();
    let barlow = SslObjectiveConfig::BarlowTwins(BarlowTwinsConfig::default())
        .init()
        .unwrap();
    let views = |online: Vec<Tensor<2>>, predictions, target| SslViews {
        online,
        predictions,
        target,
    };
    let is_views = |r: Result<_, ModelError>| matches!(r, Err(ModelError::Views(_)));
    let is_shape = |r: Result<_, ModelError>| matches!(r, Err(ModelError::Shape(_)));
    // Wrong number of online views.
    assert!(is_views(mveb.loss(&views(
        vec![v(0)],
        None,
        Some(vec![v(10), v(11)])
    ))));
    assert!(is_views(barlow.loss(&views(vec![v(0)], None, None))));
    // Missing or miscounted target / predictions.
    assert!(is_views(mveb.loss(&views(vec![v(0), v(1)], None, None))));
    assert!(is_views(mveb.loss(&views(
        vec![v(0), v(1)],
        None,
        Some(vec![v(10)])
    ))));
    assert!(is_views(simsiam.loss(&views(vec![v(0), v(1)], None, None))));
    // One prediction per view, local views included.
    assert!(is_views(simsiam.loss(&views(
        vec![v(0), v(1), v(2)],
        Some(vec![v(20), v(21)]),
        None
    ))));
    assert!(is_views(byol.loss(&views(
        vec![v(0), v(1)],
        None,
        Some(vec![v(10), v(11)])
    ))));
    // Mismatched shapes.
    let narrow = v(1).narrow(1, 0, 3);
    assert!(is_shape(barlow.loss(&views(
        vec![v(0), narrow.clone()],
        None,
        None
    ))));
    assert!(is_shape(byol.loss(&views(
        vec![v(0), v(1)],
        Some(vec![v(20), narrow]),
        Some(vec![v(10), v(11)])
    ))));
    // Out-of-domain hyper-parameters.
    let bad_lambda = SslObjectiveConfig::Mveb(MvebConfig {
        entropy_weight: -1.0,
        ..MvebConfig::default()
    });
    assert!(matches!(
        bad_lambda.init(),
        Err(ModelError::InvalidConfig(_))
    ));
    let bad_momentum = SslObjectiveConfig::Byol(ByolConfig { base_momentum: 1.5 });
    assert!(matches!(
        bad_momentum.init(),
        Err(ModelError::InvalidConfig(_))
    ));
}

/// The baselines with local views (and with the 2 global views alone) against the float64 NumPy
/// values of `reference/scripts/ssl_multicrop_numpy.py`, through the objectives and the pure
/// functions; gradients reach every view's prediction (SimSiam, BYOL) or projection (Barlow
/// Twins).
#[test]
fn baselines_with_local_views_match_the_numpy_reference() {
    let reference: serde_json::Value =
        serde_json::from_str(include_str!("../reference/ssl_multicrop.json")).expect("json");
    let device = device();
    let simsiam = SslObjectiveConfig::SimSiam(SimSiamConfig {})
        .init()
        .unwrap();
    let byol = SslObjectiveConfig::Byol(ByolConfig::default())
        .init()
        .unwrap();
    let barlow = SslObjectiveConfig::BarlowTwins(BarlowTwinsConfig::default())
        .init()
        .unwrap();
    let cases = reference["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 3);
    for case in cases {
        let count = case["views"].as_u64().expect("views") as usize;
        let value = |pointer: &str| {
            case.pointer(pointer)
                .and_then(|v| v.as_f64())
                .expect(pointer)
        };
        let online: Vec<Tensor<2>> = (0..count)
            .map(|v| view(v, &device).require_grad())
            .collect();
        let predictions: Vec<Tensor<2>> = (20..20 + count)
            .map(|v| view(v, &device).require_grad())
            .collect();
        let target: Vec<Tensor<2>> = (10..12).map(|v| view(v, &device)).collect();
        let views = SslViews {
            online: online.clone(),
            predictions: Some(predictions.clone()),
            target: Some(target.clone()),
        };
        let what = |name: &str| format!("{name} with {count} views");

        let out = simsiam.loss(&views).unwrap();
        assert_close(
            &what("simsiam"),
            term(&out, "loss"),
            value("/simsiam"),
            1e-9,
        );
        let pure = simsiam_loss(&online, &predictions).unwrap();
        assert_close(
            &what("simsiam_loss"),
            host(pure.loss)[0],
            value("/simsiam"),
            1e-9,
        );
        let grads = out.loss.backward();
        assert!(predictions.iter().all(|p| p.grad(&grads).is_some()));

        let out = byol.loss(&views).unwrap();
        assert_close(&what("byol"), term(&out, "loss"), value("/byol"), 1e-9);
        let pure = byol_loss(&predictions, [target[0].clone(), target[1].clone()]).unwrap();
        assert_close(&what("byol_loss"), host(pure.loss)[0], value("/byol"), 1e-9);

        let out = barlow.loss(&views).unwrap();
        let bt = "/barlow_twins_lambda_0.0051";
        for name in ["on_diagonal", "off_diagonal", "loss"] {
            let expected = value(&format!("{bt}/{name}"));
            assert_close(&what(name), term(&out, name), expected, 1e-9);
        }
        let pure = barlow_twins_loss(&online, 0.0051).unwrap();
        assert_close(
            &what("barlow_twins_loss"),
            host(pure.loss)[0],
            value(&format!("{bt}/loss")),
            1e-9,
        );
        let grads = out.loss.backward();
        assert!(online.iter().all(|z| z.grad(&grads).is_some()));
    }
}

/// The multi-crop pairs: each global view against every other view, nothing else.
#[test]
fn cross_view_pairs_put_each_global_view_against_every_other_view() {
    assert_eq!(
        cross_view_pairs(2).collect::<Vec<_>>(),
        vec![(0, 1), (1, 0)]
    );
    assert_eq!(
        cross_view_pairs(4).collect::<Vec<_>>(),
        vec![(0, 1), (0, 2), (0, 3), (1, 0), (1, 2), (1, 3)]
    );
}
