//! The warm-up + cosine learning-rate schedule: endpoints, shape, continuity, hand-computed
//! values, validation, and the linear-scaling rule.

use infobound_train::TrainError;
use infobound_train::optim::{WarmupCosineSchedule, scaled_learning_rate};

/// MVEB's peak: base rate 0.3 at its global batch of 4096.
const PEAK: f64 = 4.8;

fn mveb_like() -> WarmupCosineSchedule {
    WarmupCosineSchedule::new(PEAK, 10, 110).unwrap()
}

fn assert_close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() <= 1e-12 * expected.abs().max(1.0),
        "got {actual}, expected {expected}"
    );
}

#[test]
fn scaled_learning_rate_is_linear_in_batch() {
    assert_close(scaled_learning_rate(0.3, 4096), 4.8);
    assert_close(scaled_learning_rate(0.3, 256), 0.3);
    assert_close(scaled_learning_rate(0.2, 512), 0.4);
}

#[test]
fn endpoints_are_start_peak_and_final() {
    let schedule = mveb_like();
    assert_close(schedule.learning_rate(0), 1e-3 * PEAK);
    assert_close(schedule.learning_rate(10), PEAK);
    assert_close(schedule.learning_rate(110), 1e-3 * PEAK);
    // Held at the final rate past the end rather than rising again along the cosine.
    assert_close(schedule.learning_rate(111), 1e-3 * PEAK);
    assert_close(schedule.learning_rate(10_000), 1e-3 * PEAK);
}

/// Values worked out by hand (python3 `math`, f64):
/// warm-up midpoint 4.8·(0.001 + 0.999·5/10) = 2.4024;
/// cosine quarter 4.8·(0.001 + 0.999·½·(1 + cos(π/4))) = 4.097759218572866;
/// cosine midpoint 4.8·(0.001 + 0.999·½) = 2.4024.
#[test]
fn interior_values_match_hand_computation() {
    let schedule = mveb_like();
    assert_close(schedule.learning_rate(5), 2.4024);
    assert_close(schedule.learning_rate(35), 4.097759218572866);
    assert_close(schedule.learning_rate(60), 2.4024);
}

#[test]
fn warm_up_increases_and_cosine_decreases() {
    let schedule = WarmupCosineSchedule::new(1.0, 50, 400).unwrap();
    let rates: Vec<f64> = (0..=400).map(|step| schedule.learning_rate(step)).collect();
    assert!(rates[..=50].windows(2).all(|pair| pair[1] > pair[0]));
    assert!(rates[50..].windows(2).all(|pair| pair[1] < pair[0]));
    assert!(rates.iter().all(|&lr| (1e-3..=1.0).contains(&lr)));
}

/// Both pieces give the peak at the boundary, so the last warm-up increment equals every other
/// warm-up increment and the first cosine decrement is tiny (the cosine is flat at its top).
#[test]
fn continuous_at_warm_up_boundary() {
    let schedule = mveb_like();
    let increment = schedule.learning_rate(1) - schedule.learning_rate(0);
    assert_close(
        schedule.learning_rate(10) - schedule.learning_rate(9),
        increment,
    );
    let first_decrement = schedule.learning_rate(10) - schedule.learning_rate(11);
    assert!(first_decrement > 0.0 && first_decrement < 0.01 * increment);
}

#[test]
fn no_warm_up_starts_at_peak_and_factors_are_honoured() {
    let mut schedule = WarmupCosineSchedule::new(2.0, 0, 100).unwrap();
    assert_close(schedule.learning_rate(0), 2.0);
    schedule.final_factor = 0.0;
    schedule.start_factor = 0.5;
    schedule.warmup_steps = 4;
    schedule.validate().unwrap();
    assert_close(schedule.learning_rate(0), 1.0);
    assert_close(schedule.learning_rate(2), 1.5);
    assert_close(schedule.learning_rate(100), 0.0);
}

#[test]
fn invalid_schedules_are_rejected() {
    for (peak, warmup, total) in [
        (0.0, 1, 10),
        (-1.0, 1, 10),
        (f64::NAN, 1, 10),
        (f64::INFINITY, 1, 10),
        (1.0, 10, 10),
        (1.0, 11, 10),
        (1.0, 0, 0),
    ] {
        assert!(
            matches!(
                WarmupCosineSchedule::new(peak, warmup, total),
                Err(TrainError::Config(_))
            ),
            "accepted peak {peak}, warmup {warmup}, total {total}"
        );
    }
    for (start_factor, final_factor) in [(-0.1, 0.0), (0.0, 1.5), (f64::NAN, 0.0)] {
        let schedule = WarmupCosineSchedule {
            start_factor,
            final_factor,
            ..mveb_like()
        };
        assert!(matches!(schedule.validate(), Err(TrainError::Config(_))));
    }
}

#[test]
fn serde_fills_missing_fields_and_rejects_unknown_ones() {
    let parsed: WarmupCosineSchedule =
        serde_json::from_str(r#"{"peak_lr": 4.8, "warmup_steps": 10, "total_steps": 110}"#)
            .unwrap();
    assert_eq!(parsed, mveb_like());
    let round_trip: WarmupCosineSchedule =
        serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
    assert_eq!(round_trip, parsed);
    assert!(serde_json::from_str::<WarmupCosineSchedule>(r#"{"peak": 1.0}"#).is_err());
    WarmupCosineSchedule::default().validate().unwrap();
}

/// `CosineSpan::Total` divides the cosine phase by T, as the released MVEB code's `adjust_lr`
/// (`min_lr + ½(max_lr − min_lr)(1 + cos((t − W)π/T))`, wlj6816/MVEB@9ac7965
/// `project/pretrainer.py`). Values from that formula in python3 (`math`, f64) with
/// max_lr 4.8, min_lr 4.8e-3, W 10, T 110: t = 35 → 4.214385179471769, t = 60 →
/// 2.7436140562440277, t = 110 → 0.10191964646188109; past T the rate stays at its T value.
#[test]
fn total_span_matches_the_released_mveb_schedule() {
    use infobound_train::optim::CosineSpan;
    let schedule = mveb_like().with_cosine_span(CosineSpan::Total);
    assert_close(schedule.learning_rate(5), 2.4024);
    assert_close(schedule.learning_rate(35), 4.214385179471769);
    assert_close(schedule.learning_rate(60), 2.7436140562440277);
    assert_close(schedule.learning_rate(110), 0.10191964646188109);
    assert_close(schedule.learning_rate(500), 0.10191964646188109);
    // The default span ends at the bottom instead.
    assert_close(mveb_like().learning_rate(110), 1e-3 * PEAK);
    let text = serde_json::to_string(&schedule).unwrap();
    assert!(text.contains(r#""cosine_span":"total""#), "{text}");
}
