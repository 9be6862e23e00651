//! Order statistics of the n1·n2 pairwise differences c_i − b_j of two ascending samples,
//! found exactly without materialising them.
//!
//! The differences form a matrix whose rows (one per c_i) fall as j grows and whose columns
//! rise as i grows, so the pairs at or below any value are counted by one two-pointer sweep in
//! O(n1 + n2). The search keeps, per row, the range of columns still in play: the pairs above
//! a lower bound (fewer than k pairs at or below it) and at or below an upper bound (at least
//! k pairs at or below it). Each round draws a uniform sample of the pairs in play, takes two
//! pivots from it just either side of the wanted rank and counts against both in one sweep; a
//! few rounds leave O(n1 + n2) pairs, which are gathered and selected directly. Pivots are
//! actual differences computed with the same subtraction as every count, so the result is the
//! exact k-th smallest of the floating-point differences; the seeded sampling only decides how
//! fast it is found.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How the search samples and when it stops narrowing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    /// Pairs drawn per narrowing round.
    pub sample: usize,
    /// Pairs in play at or below which they are gathered and selected directly.
    pub gather_at: u64,
}

impl Tuning {
    /// The defaults for samples of `n1` and `n2` values.
    pub(crate) fn for_sizes(n1: usize, n2: usize) -> Self {
        Self {
            sample: 1 << 16,
            gather_at: 2 * (n1 as u64 + n2 as u64) + 4096,
        }
    }
}

/// Seed of the sampling; any seed gives the same results.
const SEED: u64 = 0x5eed_4c48;

/// Standard deviations of the sample quantile kept on each side of the wanted rank.
const MARGIN_SD: f64 = 3.0;

/// Columns compared at once when a row's pointer moves.
const BLOCK: usize = 8;

/// The first column in `from..to` whose difference `ci − b_j` is at most `v`, or `to`; the
/// columns before `from` must be above `v`. The differences fall along the row, so the ones
/// above `v` are a prefix: a block of columns is skipped by counting them without branches,
/// and the loop ends on the first block that is not all above.
#[inline]
fn first_at_most(b: &[f64], ci: f64, v: f64, from: usize, to: usize) -> usize {
    let mut j = from;
    while j + BLOCK <= to {
        let above: usize = b[j..j + BLOCK]
            .iter()
            .map(|&x| usize::from(ci - x > v))
            .sum();
        j += above;
        if above < BLOCK {
            return j;
        }
    }
    while j < to && ci - b[j] > v {
        j += 1;
    }
    j
}

/// The pairs of two ascending samples still in play for one selection.
struct Search<'a> {
    c: &'a [f64],
    b: &'a [f64],
    /// Per row, the first column in play (the pairs left of it are above the upper bound).
    start: Vec<usize>,
    /// Per row, one past the last column in play (the pairs from it on are at or below the
    /// lower bound).
    end: Vec<usize>,
    /// Pairs at or below the lower bound.
    below: u64,
    /// Pairs at or below the upper bound.
    upto: u64,
    /// Whether every pair is still in play.
    full: bool,
}

impl<'a> Search<'a> {
    fn new(c: &'a [f64], b: &'a [f64]) -> Self {
        Self {
            c,
            b,
            start: vec![0; c.len()],
            end: vec![b.len(); c.len()],
            below: 0,
            upto: c.len() as u64 * b.len() as u64,
            full: true,
        }
    }

    fn in_play(&self) -> u64 {
        self.upto - self.below
    }

    /// Counts the pairs at or below `v1` and at or below `v2` (lower bound <= `v1` <= `v2` <=
    /// upper bound) and writes each row's first column at or below them.
    fn cut(&self, v1: f64, v2: f64, cols1: &mut [usize], cols2: &mut [usize]) -> (u64, u64) {
        let n = self.b.len();
        let (mut at1, mut at2) = (0u64, 0u64);
        // Both columns only move right as i grows, and the one for v2 is never right of the
        // one for v1.
        let (mut j1, mut j2) = (0usize, 0usize);
        for (i, &ci) in self.c.iter().enumerate() {
            let (s, e) = (self.start[i], self.end[i]);
            j1 = first_at_most(self.b, ci, v1, j1.max(s), e);
            j2 = first_at_most(self.b, ci, v2, j2.max(s), j1);
            cols1[i] = j1;
            cols2[i] = j2;
            at1 += (n - j1) as u64;
            at2 += (n - j2) as u64;
        }
        (at1, at2)
    }

    /// A uniform sample (with replacement) of the differences in play.
    fn sample(&self, size: usize, rng: &mut StdRng) -> Vec<f64> {
        if self.full {
            return (0..size)
                .map(|_| {
                    let ci = self.c[rng.random_range(0..self.c.len())];
                    ci - self.b[rng.random_range(0..self.b.len())]
                })
                .collect();
        }
        let total = self.in_play();
        let mut at: Vec<u64> = (0..size).map(|_| rng.random_range(0..total)).collect();
        at.sort_unstable();
        let mut out = Vec::with_capacity(size);
        let mut next = at.iter().peekable();
        let mut passed = 0u64;
        for (i, &ci) in self.c.iter().enumerate() {
            let (s, e) = (self.start[i], self.end[i]);
            let row_end = passed + (e - s) as u64;
            while let Some(&&u) = next.peek() {
                if u >= row_end {
                    break;
                }
                out.push(ci - self.b[s + (u - passed) as usize]);
                next.next();
            }
            passed = row_end;
        }
        out
    }

    /// The `rank`-th smallest (0-based) of the differences in play, gathered.
    fn gather_select(&self, rank: usize) -> f64 {
        let mut all = Vec::with_capacity(self.in_play() as usize);
        for (i, &ci) in self.c.iter().enumerate() {
            all.extend(self.b[self.start[i]..self.end[i]].iter().map(|&x| ci - x));
        }
        let (_, x, _) = all.select_nth_unstable_by(rank, f64::total_cmp);
        *x
    }
}

/// Two pivots from a sample of `in_play` pairs: order statistics of the sample about
/// `MARGIN_SD` standard deviations below and above the wanted fraction `q`.
fn pivots(mut sample: Vec<f64>, q: f64) -> (f64, f64) {
    let s = sample.len() as f64;
    let spread = MARGIN_SD * (s * q * (1.0 - q)).sqrt() + 1.0;
    let last = sample.len() - 1;
    let lo_at = ((q * s - spread).floor().max(0.0) as usize).min(last);
    let hi_at = ((q * s + spread).ceil().max(0.0) as usize).min(last);
    let (_, v1, right) = sample.select_nth_unstable_by(lo_at, f64::total_cmp);
    let v1 = *v1;
    if hi_at > lo_at {
        let (_, v2, _) = right.select_nth_unstable_by(hi_at - lo_at - 1, f64::total_cmp);
        (v1, *v2)
    } else {
        (v1, v1)
    }
}

/// The k-th smallest (1-based, `1 <= k <= n1 n2`) difference c_i − b_j of two non-empty
/// ascending samples whose pair count fits in a `u64`.
pub(crate) fn kth_difference(c: &[f64], b: &[f64], k: u64, tuning: Tuning) -> f64 {
    let mut search = Search::new(c, b);
    let mut rng = StdRng::seed_from_u64(SEED);
    let (mut cols1, mut cols2) = (vec![0usize; c.len()], vec![0usize; c.len()]);
    // Invariant: below < k <= upto; the pairs in play lie above the lower bound and at or
    // below the upper one.
    loop {
        let in_play = search.in_play();
        if in_play <= tuning.gather_at.max(1) {
            return search.gather_select((k - search.below - 1) as usize);
        }
        let q = (k - search.below) as f64 / in_play as f64;
        let (v1, v2) = pivots(search.sample(tuning.sample.max(1), &mut rng), q);
        search.full = false;
        let (at1, at2) = search.cut(v1, v2, &mut cols1, &mut cols2);
        if at1 >= k {
            let progress = at1 < search.upto;
            std::mem::swap(&mut search.start, &mut cols1);
            search.upto = at1;
            if !progress {
                // Nothing in play lies above v1, so v1 is the largest difference in play, and
                // many are tied with it: it is the answer unless fewer than k lie below it.
                let below_v1 = v1.next_down();
                let (under, _) = search.cut(below_v1, below_v1, &mut cols1, &mut cols2);
                if under < k {
                    return v1;
                }
                std::mem::swap(&mut search.start, &mut cols1);
                search.upto = under;
            }
        } else if at2 >= k {
            std::mem::swap(&mut search.end, &mut cols1);
            std::mem::swap(&mut search.start, &mut cols2);
            search.below = at1;
            search.upto = at2;
        } else {
            std::mem::swap(&mut search.end, &mut cols2);
            search.below = at2;
        }
    }
}

/// The k-th and (k+1)-th smallest differences (`1 <= k < n1 n2`): the second is the first
/// again when it is tied, else the smallest difference above it.
pub(crate) fn kth_and_next(c: &[f64], b: &[f64], k: u64, tuning: Tuning) -> (f64, f64) {
    let x = kth_difference(c, b, k, tuning);
    let mut at_most = 0u64;
    let mut above = f64::INFINITY;
    let mut j = 0usize;
    for &ci in c {
        // The first column at or below x; the one before it holds the row's smallest
        // difference above x.
        j = first_at_most(b, ci, x, j, b.len());
        at_most += (b.len() - j) as u64;
        if j > 0 {
            above = above.min(ci - b[j - 1]);
        }
    }
    (x, if at_most > k { x } else { above })
}

#[cfg(test)]
#[path = "pairwise_tests.rs"]
mod tests;
