//! Simulations under continuous monitoring (seeded, deterministic): the sequential tests keep
//! their false-alarm rate at or below alpha where a fixed test at every look does not, and
//! still detect real regressions quickly.

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::sim::{binomial, poisson, slack};
use super::*;
use crate::stats::{Alternative, Counts, two_proportion_z};

const ALPHA: f64 = 0.05;
const RUNS: usize = 400;
const LOOKS: usize = 30;
/// Requests per one-minute interval at 50 requests/s.
const PER_LOOK: f64 = 3000.0;
const ERROR_RATE: f64 = 0.0012;

/// One simulated canary: per look, the canary's share, the load factor and a shared error
/// multiplier; returns the look of the first rejection, if any, for the sequential test and
/// for a naive z-test at every look on the cumulative counts.
fn run_counts(
    rng: &mut StdRng,
    canary_factor: f64,
    shocks: bool,
) -> (Option<usize>, Option<usize>) {
    let mut test = ShareTest::new(Direction::HigherIsWorse, 0.05).expect("valid");
    let (mut c_all, mut b_all) = (Counts::default(), Counts::default());
    let (mut seq, mut naive) = (None, None);
    for look in 0..LOOKS {
        let share = if look < 10 { 0.05 } else { 0.25 };
        let load = if shocks {
            1.0 + 0.6 * (look as f64 / 4.0).sin()
        } else {
            1.0
        };
        let burst = if shocks && (8..11).contains(&look) {
            10.0
        } else {
            1.0
        };
        let n = PER_LOOK * load;
        let (nc, nb) = (
            (n * share).round() as u64,
            (n * (1.0 - share)).round() as u64,
        );
        let kc = poisson(rng, nc as f64 * ERROR_RATE * burst * canary_factor);
        let kb = poisson(rng, nb as f64 * ERROR_RATE * burst);
        let (c, b) = (
            Counts {
                events: kc.min(nc),
                total: nc,
            },
            Counts {
                events: kb.min(nb),
                total: nb,
            },
        );
        test.update(c, b);
        c_all = Counts {
            events: c_all.events + c.events,
            total: c_all.total + c.total,
        };
        b_all = Counts {
            events: b_all.events + b.events,
            total: b_all.total + b.total,
        };
        if seq.is_none() && test.p_value() <= ALPHA {
            seq = Some(look + 1);
        }
        if naive.is_none()
            && let Ok(r) = two_proportion_z(c_all, b_all, Alternative::Greater)
            && r.p_value <= ALPHA
        {
            naive = Some(look + 1);
        }
    }
    (seq, naive)
}

#[test]
fn share_test_keeps_false_alarms_below_alpha_under_continuous_looks() {
    for shocks in [false, true] {
        let mut rng = StdRng::seed_from_u64(11 + u64::from(shocks));
        let (mut seq, mut naive) = (0, 0);
        for _ in 0..RUNS {
            let (s, n) = run_counts(&mut rng, 1.0, shocks);
            seq += usize::from(s.is_some());
            naive += usize::from(n.is_some());
        }
        let (seq, naive) = (seq as f64 / RUNS as f64, naive as f64 / RUNS as f64);
        eprintln!(
            "share test, shocks={shocks}: sequential {seq:.3}, naive z every look {naive:.3}"
        );
        assert!(
            seq <= ALPHA + slack(ALPHA, RUNS),
            "sequential false alarms {seq}"
        );
        assert!(
            naive > ALPHA + slack(ALPHA, RUNS),
            "the naive test must inflate: {naive}"
        );
    }
}

#[test]
fn share_test_detects_regressions() {
    let mut rng = StdRng::seed_from_u64(5);
    let runs = 200;
    let severe: Vec<Option<usize>> = (0..runs)
        .map(|_| run_counts(&mut rng, 3.2 / 0.12, false).0)
        .collect();
    // Errors alone at 5 % traffic: ~5 canary errors in the first minute. (The judge also
    // sees the latency regression, which the exceedance test catches in the first minute.)
    let within_two = severe
        .iter()
        .filter(|s| matches!(s, Some(l) if *l <= 2))
        .count();
    let within_four = severe
        .iter()
        .filter(|s| matches!(s, Some(l) if *l <= 4))
        .count();
    assert!(
        within_two as f64 >= 0.95 * runs as f64,
        "severe detected within 2 looks in {within_two}/{runs}"
    );
    assert_eq!(within_four, runs, "severe detected within 4 looks");
    let triple: Vec<Option<usize>> = (0..runs)
        .map(|_| run_counts(&mut rng, 3.0, false).0)
        .collect();
    let caught = triple
        .iter()
        .filter(|s| matches!(s, Some(l) if *l <= 15))
        .count();
    eprintln!(
        "3x errors detected within 15 looks in {caught}/{runs}, severe within 2 looks in {within_two}/{runs}"
    );
    // About 16 canary errors arrive in these 15 looks at 5 % and 25 % traffic: a 3x rate is
    // found in most runs here, and in the 100 % phase by the stale-baseline test.
    assert!(
        caught as f64 >= 0.6 * runs as f64,
        "3x errors detected in {caught}/{runs}"
    );
}

#[test]
fn exceedance_test_keeps_false_alarms_below_alpha_and_detects_shifts() {
    let mut rng = StdRng::seed_from_u64(21);
    let (mut seq, mut naive) = (0, 0);
    for _ in 0..RUNS {
        let mut t = ExceedanceTest::new(0.5).expect("valid");
        let (mut s_all, mut n_all) = (0u64, 0u64);
        let (mut hit, mut naive_hit) = (false, false);
        for _ in 0..LOOKS {
            let s = binomial(&mut rng, 150, 0.5);
            t.update(s as f64, (150 - s) as f64);
            s_all += s;
            n_all += 150;
            hit |= t.p_value() <= ALPHA;
            // Naive: one-sided binomial z at every look.
            let z = (s_all as f64 - 0.5 * n_all as f64) / (0.25 * n_all as f64).sqrt();
            naive_hit |= crate::stats::special::norm_sf(z) <= ALPHA;
        }
        seq += usize::from(hit);
        naive += usize::from(naive_hit);
    }
    let (seq, naive) = (seq as f64 / RUNS as f64, naive as f64 / RUNS as f64);
    eprintln!("exceedance test: sequential {seq:.3}, naive every look {naive:.3}");
    assert!(
        seq <= ALPHA + slack(ALPHA, RUNS),
        "sequential false alarms {seq}"
    );
    assert!(
        naive > ALPHA + slack(ALPHA, RUNS),
        "naive must inflate: {naive}"
    );

    // A canary whose median doubled exceeds the baseline median ~79 % of the time.
    let mut t = ExceedanceTest::new(0.5).expect("valid");
    let s = binomial(&mut rng, 150, 0.79);
    t.update(s as f64, (150 - s) as f64);
    assert!(
        t.p_value() < 0.001,
        "one minute of a doubled median: p = {}",
        t.p_value()
    );
}

#[test]
fn either_direction_and_bad_tolerances() {
    let mut t = ShareTest::new(Direction::Either, 0.1).expect("valid");
    t.update(
        Counts {
            events: 0,
            total: 1000,
        },
        Counts {
            events: 60,
            total: 3000,
        },
    );
    t.update(
        Counts {
            events: 0,
            total: 1000,
        },
        Counts {
            events: 60,
            total: 3000,
        },
    );
    assert!(
        t.p_value() < 0.05,
        "a canary with no conversions is worse for lower-is-worse too"
    );
    assert!(ShareTest::new(Direction::LowerIsWorse, 1.5).is_err());
    assert!(ExceedanceTest::new(0.0).is_err());
}
