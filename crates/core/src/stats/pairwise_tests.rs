//! The selection of pairwise differences against a brute-force O(n1 n2) reference: every rank
//! of small random samples (ties, duplicates, unequal sizes), and ranks of larger samples,
//! with the default tuning and with tunings that force the sampling rounds.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

/// All differences c_i − b_j, ascending.
fn brute(c: &[f64], b: &[f64]) -> Vec<f64> {
    let mut d: Vec<f64> = c
        .iter()
        .flat_map(|x| b.iter().map(move |y| x - y))
        .collect();
    d.sort_by(f64::total_cmp);
    d
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// A sample of `n` values: from a handful of levels (many ties) or continuous.
fn sample(rng: &mut StdRng, n: usize, levels: Option<u32>) -> Vec<f64> {
    sorted(
        (0..n)
            .map(|_| match levels {
                Some(l) => f64::from(rng.random_range(0..l)) * 0.5,
                None => rng.random::<f64>() * 100.0 - 30.0,
            })
            .collect(),
    )
}

/// The default tuning and ones that sample tiny sets and never (or hardly) gather, so the
/// narrowing rounds and the pivot hits are exercised on small inputs.
fn tunings(c: &[f64], b: &[f64]) -> [Tuning; 4] {
    [
        Tuning::for_sizes(c.len(), b.len()),
        Tuning {
            sample: 1,
            gather_at: 0,
        },
        Tuning {
            sample: 5,
            gather_at: 0,
        },
        Tuning {
            sample: 16,
            gather_at: 3,
        },
    ]
}

fn check_all_ranks(c: &[f64], b: &[f64]) {
    let all = brute(c, b);
    for tuning in tunings(c, b) {
        for k in 1..=all.len() {
            let got = kth_difference(c, b, k as u64, tuning);
            assert_eq!(got, all[k - 1], "k = {k} of {c:?} − {b:?}, {tuning:?}");
            if k < all.len() {
                let (x, y) = kth_and_next(c, b, k as u64, tuning);
                assert_eq!((x, y), (all[k - 1], all[k]), "k = {k} and next, {tuning:?}");
            }
        }
    }
}

#[test]
fn every_rank_of_small_random_samples_matches_brute_force() {
    let mut rng = StdRng::seed_from_u64(11);
    for round in 0..200 {
        let (n1, n2) = (rng.random_range(1..=13), rng.random_range(1..=13));
        let levels = match round % 3 {
            0 => Some(3),
            1 => Some(12),
            _ => None,
        };
        let c = sample(&mut rng, n1, levels);
        let b = sample(&mut rng, n2, levels);
        check_all_ranks(&c, &b);
    }
}

#[test]
fn single_values_all_ties_and_duplicated_samples() {
    check_all_ranks(&[2.5], &[1.0]);
    check_all_ranks(&[1.0; 7], &[1.0; 4]);
    check_all_ranks(&[0.0, 0.0, 1.0, 1.0], &[0.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
    let s = [-3.0, 0.25, 0.25, 7.0, 1e6];
    check_all_ranks(&s, &s);
    check_all_ranks(&[1.0, 1.0, 1.0, 9.0], &[-1e300, 0.0, 1e300]);
}

#[test]
fn ranks_of_larger_samples_match_brute_force() {
    let mut rng = StdRng::seed_from_u64(23);
    for (n1, n2, levels) in [
        (400, 150, None),
        (211, 389, Some(40)),
        (300, 300, Some(4)),
        (1, 500, None),
    ] {
        let c = sample(&mut rng, n1, levels);
        let b = sample(&mut rng, n2, levels);
        let all = brute(&c, &b);
        let total = all.len();
        let fixed = [1, 2, total / 2, total / 2 + 1, total - 1, total];
        let random: Vec<usize> = (0..30).map(|_| rng.random_range(1..=total)).collect();
        let mut cases: Vec<(Tuning, &[usize])> = vec![(Tuning::for_sizes(n1, n2), &fixed)];
        for tuning in [(1, 0), (7, 0), (300, 40)] {
            let (sample, gather_at) = tuning;
            for ranks in [&fixed[..], &random[..]] {
                cases.push((Tuning { sample, gather_at }, ranks));
            }
        }
        for (tuning, ranks) in cases {
            for &k in ranks {
                let got = kth_difference(&c, &b, k as u64, tuning);
                assert_eq!(got, all[k - 1], "k = {k} of {n1} x {n2}, {tuning:?}");
            }
        }
    }
}
