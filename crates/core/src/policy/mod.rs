//! The phase policy: turns the judge's findings and where the canary stands in its ramp into
//! one action — continue, extend, hold, advance, roll back or promote — with the reason.
//!
//! Order of the rules (the first that applies wins):
//! 1. A critical metric fails at the rollback tier, or two or more metrics fail of which at
//!    least one is critical: **rollback**.
//!
//!    Then, when the canary received far from the share of requests its alias routes (the
//!    judge's sample-ratio check): a routing problem, **hold** (and notify) — a **rollback**
//!    once the canary's timeout is spent, never an advance.
//! 2. A critical metric fails (hold tier or absolute limit): **hold**; a hold that has lasted
//!    the phase's soak window becomes a **rollback**.
//! 3. A critical metric has no data (or its test could not run), or the canary has fewer requests than the phase needs:
//!    **continue** while the phase is still soaking, **extend** once it is over, and
//!    **rollback** once the canary's overall timeout is spent — never advance on missing or
//!    insufficient data.
//! 4. The phase is still soaking: **continue**.
//! 5. A critical metric judged sequentially leans toward a regression beyond its tolerance
//!    (warning tier: the evidence now is at p < `pass_p_value`): **extend** the phase for
//!    more evidence rather than advance or promote, until the evidence clears or fails; a
//!    **rollback** once the canary's timeout is spent.
//! 6. Otherwise: **advance** to the next phase, or **promote** after the last one.
//!
//! Non-critical failures and warnings never block; they are reported.

use serde::{Deserialize, Serialize};

use crate::config::CanaryConfig;
use crate::judge::{JudgeReport, MetricReport, Severity, Verdict};

/// What the controller does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Keep the weight and look again.
    Continue,
    /// The phase is over but lacks data: keep the weight, prolong the phase.
    Extend,
    /// A breach: keep the weight (never ramp), keep watching.
    Hold,
    /// Shift to the next phase's weight.
    Advance,
    /// Send all traffic back to the baseline.
    Rollback,
    /// Send all traffic to the canary; the canary is done.
    Promote,
}

impl Action {
    /// The lower-case name used in JSON and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Continue => "continue",
            Action::Extend => "extend",
            Action::Hold => "hold",
            Action::Advance => "advance",
            Action::Rollback => "rollback",
            Action::Promote => "promote",
        }
    }

    /// Whether the canary ends with this action.
    pub fn is_final(self) -> bool {
        matches!(self, Action::Rollback | Action::Promote)
    }
}

/// Where the canary stands when it looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PhaseState {
    /// 1-based phase.
    pub phase: usize,
    /// Seconds since the phase started.
    pub elapsed_in_phase_seconds: u64,
    /// Seconds since the canary started.
    pub total_elapsed_seconds: u64,
    /// Seconds the canary has been holding on a breach (0 when not holding).
    pub hold_seconds: u64,
}

/// The policy's answer, with the evidence that led to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// What to do.
    pub action: Action,
    /// 1-based phase the decision was taken in.
    pub phase: usize,
    /// The canary's traffic percentage during the look.
    pub canary_weight: f64,
    /// The canary's traffic percentage after the action.
    pub next_weight: f64,
    /// Why, in words.
    pub reason: String,
    /// An operator must confirm before the action is applied.
    pub requires_approval: bool,
    /// Seconds to wait before acting (e.g. the hold before full traffic) or looking again.
    pub wait_seconds: u64,
    /// Canary requests seen in the phase, and the phase's minimum.
    pub canary_samples: u64,
    /// The phase's `min_samples`.
    pub min_samples: u64,
    /// The judge's findings.
    pub report: JudgeReport,
}

/// Decides the next action. `state.phase` must be a phase of `config` (1-based); out-of-range
/// values are clamped to the last phase.
pub fn decide(config: &CanaryConfig, report: JudgeReport, state: &PhaseState) -> Decision {
    let last = config.canary_phases.len();
    let phase_no = state.phase.clamp(1, last);
    let phase = &config.canary_phases[phase_no - 1];
    let weight = config.phase_weight(phase_no - 1);
    let samples = report.canary_requests();
    let look = config.analysis.look_interval_seconds;
    let mut d = Decision {
        action: Action::Continue,
        phase: phase_no,
        canary_weight: weight,
        next_weight: weight,
        reason: String::new(),
        requires_approval: false,
        wait_seconds: look,
        canary_samples: samples,
        min_samples: phase.min_samples,
        report,
    };
    let failures = Failures::of(&d.report);
    if let Some(why) = failures.immediate_rollback() {
        return rollback(config, d, why);
    }
    if let Some(s) = &d.report.sample_ratio_mismatch {
        let why = format!(
            "sample-ratio mismatch: the canary received {:.1}% of the requests ({} of {}, by {}) where the alias routes {:.1}%: a routing problem, not a verdict",
            s.observed_share * 100.0,
            s.canary,
            s.canary.saturating_add(s.baseline),
            s.metric,
            s.expected_share * 100.0
        );
        if state.total_elapsed_seconds >= config.timeout_seconds {
            let why = format!(
                "{why}; still after the canary's {} s timeout, and a split that cannot be trusted never promotes",
                config.timeout_seconds
            );
            return rollback(config, d, why);
        }
        d.action = Action::Hold;
        d.reason = format!("{why}: holding at {weight}% until the split is right");
        return d;
    }
    let critical_fail = failures.critical.clone();
    if !critical_fail.is_empty() {
        let why = format!("critical metric failing: {}", names(&critical_fail));
        if state.hold_seconds >= phase.duration_seconds {
            let why = format!(
                "{why}; the hold has lasted {} s, past the phase's {} s soak window",
                state.hold_seconds, phase.duration_seconds
            );
            return rollback(config, d, why);
        }
        d.action = Action::Hold;
        d.reason = format!("{why}: holding at {weight}% and watching");
        return d;
    }
    let no_data: Vec<_> = d
        .report
        .metrics
        .iter()
        .filter(|m| m.critical && matches!(m.verdict, Verdict::NoData | Verdict::Error))
        .map(|m| m.name.as_str())
        .collect();
    if !no_data.is_empty() || samples < phase.min_samples {
        let why = if no_data.is_empty() {
            format!(
                "insufficient data: {samples} canary samples of the {} required",
                phase.min_samples
            )
        } else {
            format!(
                "no usable data for critical metric(s) {}",
                no_data.join(", ")
            )
        };
        if state.total_elapsed_seconds >= config.timeout_seconds {
            let why = format!(
                "{why} after the canary's {} s timeout; never promoting on missing data",
                config.timeout_seconds
            );
            return rollback(config, d, why);
        }
        if state.elapsed_in_phase_seconds >= phase.duration_seconds {
            d.action = Action::Extend;
            d.reason = format!("{why}: extending phase {phase_no}");
        } else {
            d.reason = format!("{why} so far: phase {phase_no} continues");
        }
        return d;
    }
    let warned: Vec<_> = d
        .report
        .metrics
        .iter()
        .filter(|m| matches!(m.verdict, Verdict::Warning | Verdict::Fail | Verdict::Error))
        .map(|m| m.name.as_str())
        .collect();
    let note = if warned.is_empty() {
        "all metrics pass".to_string()
    } else {
        format!(
            "critical metrics pass (non-blocking findings: {})",
            warned.join(", ")
        )
    };
    if state.elapsed_in_phase_seconds < phase.duration_seconds {
        d.reason = format!(
            "{note}; phase {phase_no} soaks for {} s more",
            phase.duration_seconds - state.elapsed_in_phase_seconds
        );
        return d;
    }
    let leaning: Vec<_> = d
        .report
        .metrics
        .iter()
        .filter(|m| {
            m.critical
                && m.verdict == Verdict::Warning
                && m.method == crate::config::AnalysisMethod::Sequential
        })
        .map(|m| m.name.as_str())
        .collect();
    if !leaning.is_empty() {
        let why = format!(
            "critical metric(s) {} lean toward a regression beyond tolerance (warning tier)",
            leaning.join(", ")
        );
        if state.total_elapsed_seconds >= config.timeout_seconds {
            let why = format!(
                "{why}, still after the canary's {} s timeout; an unresolved canary is never promoted",
                config.timeout_seconds
            );
            return rollback(config, d, why);
        }
        d.action = Action::Extend;
        d.reason = format!("{why}: extending phase {phase_no} for more evidence");
        return d;
    }
    if phase_no == last {
        d.action = Action::Promote;
        d.next_weight = 100.0;
        d.wait_seconds = 0;
        d.reason = format!("{note}; the last phase is complete: promoting");
        return d;
    }
    // Approvals and the hold before full traffic follow the phase's nominal share; the alias
    // weight keeps the live holdback.
    let next = config.canary_phases[phase_no].traffic_percentage;
    d.action = Action::Advance;
    d.next_weight = config.phase_weight(phase_no);
    d.wait_seconds = 0;
    let ta = &config.traffic_advancing;
    d.requires_approval =
        !ta.auto_advance_on_pass || (next >= 100.0 && ta.requires_approval_before_full_traffic);
    if next >= 100.0 {
        d.wait_seconds = ta.hold_before_full_traffic;
    }
    if d.requires_approval && state.total_elapsed_seconds >= config.timeout_seconds {
        // Unanswered approvals would otherwise keep the split forever: the canary's timeout
        // ends it the way it ends every canary that runs out — rolled back, never promoted.
        let why = format!(
            "{note}, but the shift from {weight}% to {next}% still waits for an operator after the canary's {} s timeout",
            config.timeout_seconds
        );
        d.requires_approval = false;
        return rollback(config, d, why);
    }
    d.reason = if d.next_weight < next {
        format!(
            "{note}; advancing from {weight}% to {}% ({next}% less a live holdback of {}% that stays on the baseline, so the final comparison stays live)",
            d.next_weight, config.traffic_advancing.live_holdback_percent
        )
    } else {
        format!("{note}; advancing from {weight}% to {next}%")
    };
    d
}

fn rollback(config: &CanaryConfig, mut d: Decision, why: String) -> Decision {
    if rollback_mode(config) == RollbackMode::Disabled {
        d.action = Action::Hold;
        d.requires_approval = true;
        d.reason = format!("{why}; automatic rollback is disabled: holding for an operator");
        return d;
    }
    d.action = Action::Rollback;
    d.next_weight = 0.0;
    d.wait_seconds = 0;
    d.requires_approval = rollback_mode(config) == RollbackMode::NeedsConfirmation;
    d.reason = if d.requires_approval {
        format!(
            "{why}: rolling back once an operator confirms (automatically after {} s)",
            config.auto_rollback.rollback_timeout_seconds
        )
    } else {
        format!("{why}: rolling back")
    };
    d
}

fn names(metrics: &[&MetricReport]) -> String {
    metrics
        .iter()
        .map(|m| m.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// How the config lets a rollback happen (`auto_rollback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackMode {
    /// canary-gate rolls back on its own.
    Automatic,
    /// canary-gate rolls back once an operator confirms (or the confirmation times out).
    NeedsConfirmation,
    /// Never on its own: an operator decides.
    Disabled,
}

/// The config's rollback mode.
pub fn rollback_mode(config: &CanaryConfig) -> RollbackMode {
    let a = &config.auto_rollback;
    match (a.enabled, a.requires_ops_confirmation) {
        (false, _) => RollbackMode::Disabled,
        (true, true) => RollbackMode::NeedsConfirmation,
        (true, false) => RollbackMode::Automatic,
    }
}

/// The failing metrics of a report, as the rules read them.
#[derive(Debug, Clone)]
pub struct Failures<'a> {
    /// Every failing metric.
    pub failing: Vec<&'a MetricReport>,
    /// The failing critical metrics.
    pub critical: Vec<&'a MetricReport>,
    /// The failing critical metrics at the rollback tier.
    pub rollback_tier: Vec<&'a MetricReport>,
}

impl<'a> Failures<'a> {
    /// Sorts a report's failures.
    pub fn of(report: &'a JudgeReport) -> Self {
        let failing: Vec<&MetricReport> = report
            .metrics
            .iter()
            .filter(|m| m.verdict == Verdict::Fail)
            .collect();
        let critical: Vec<&MetricReport> = failing.iter().copied().filter(|m| m.critical).collect();
        let rollback_tier = critical
            .iter()
            .copied()
            .filter(|m| m.severity == Some(Severity::Rollback))
            .collect();
        Self {
            failing,
            critical,
            rollback_tier,
        }
    }

    /// Rule 1, shared by the phases and the post-promotion soak: a critical metric failing at
    /// the rollback tier, or two failing metrics of which one is critical, rolls back at once.
    /// Returns why, when it applies.
    pub fn immediate_rollback(&self) -> Option<String> {
        if !self.rollback_tier.is_empty() {
            Some(format!(
                "critical regression at the rollback tier: {}",
                names(&self.rollback_tier)
            ))
        } else if self.failing.len() >= 2 && !self.critical.is_empty() {
            Some(format!("several metrics fail ({})", names(&self.failing)))
        } else {
            None
        }
    }
}

/// How one look of the post-promotion soak stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoakFinding {
    /// Nothing critical fails.
    Healthy,
    /// A critical metric fails at the hold tier: watched until the soak ends.
    Suspect(String),
    /// A regression: roll back (as `auto_rollback` allows).
    Regressed(String),
}

/// The soak's rule: rule 1 of the phases rolls back at once; a critical failure at the hold
/// tier is watched and rolls back if it still fails at the soak's last look (the soak's
/// counterpart of a hold outlasting its phase).
pub fn soak_finding(report: &JudgeReport, final_look: bool) -> SoakFinding {
    let f = Failures::of(report);
    if let Some(why) = f.immediate_rollback() {
        SoakFinding::Regressed(why)
    } else if !f.critical.is_empty() && final_look {
        SoakFinding::Regressed(format!(
            "critical metric(s) {} still fail when the soak ends",
            names(&f.critical)
        ))
    } else if !f.critical.is_empty() {
        SoakFinding::Suspect(format!("critical metric(s) {} fail", names(&f.critical)))
    } else {
        SoakFinding::Healthy
    }
}

#[cfg(test)]
mod tests;
