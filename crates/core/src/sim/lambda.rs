//! A simulated Lambda function behind an alias, implementing the same ports as the AWS
//! adapters: the alias's weights route the fleet's traffic, each simulated minute is stored
//! like a CloudWatch datapoint, and published notifications are kept for inspection.

use std::sync::Mutex;

use super::Fleet;
use crate::config::{CanaryConfig, Target};
use crate::controller::Interval;
use crate::notify::Notification;
use crate::ports::{
    AliasState, Claim, Fetched, MetricsSource, Notifier, PortError, TimeRange, TrafficRouter,
};

#[derive(Debug)]
struct Inner {
    fleet: Fleet,
    alias: AliasState,
    canary_version: String,
    revision: u64,
    /// Simulated time up to which traffic has been generated (epoch seconds).
    clock: i64,
    /// Minute datapoints, `(epoch end of minute, interval)`.
    minutes: Vec<(i64, Interval)>,
    published: Vec<Notification>,
}

/// The simulated function, alias and metrics store.
#[derive(Debug)]
pub struct SimulatedLambda {
    inner: Mutex<Inner>,
    /// Seconds of traffic per stored datapoint.
    period: i64,
}

impl SimulatedLambda {
    /// An alias pointing at `target.baseline_version`, with traffic starting at `start_epoch`.
    pub fn new(fleet: Fleet, target: &Target, start_epoch: i64, period_seconds: u64) -> Self {
        Self {
            inner: Mutex::new(Inner {
                fleet,
                alias: AliasState {
                    version: target.baseline_version.clone(),
                    additional: None,
                    revision_id: "rev-1".to_string(),
                    claim: None,
                },
                canary_version: target.canary_version.clone(),
                revision: 1,
                clock: start_epoch,
                minutes: Vec::new(),
                published: Vec::new(),
            }),
            period: period_seconds.max(1) as i64,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means a panic elsewhere in a test; the data is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lets simulated time pass until `epoch`, generating traffic at the alias's current
    /// weights one period at a time.
    pub fn run_until(&self, epoch: i64) {
        let mut g = self.lock();
        while g.clock + self.period <= epoch {
            let end = g.clock + self.period;
            let weight = {
                let canary = g.canary_version.clone();
                g.alias.weight_of(&canary)
            };
            let interval = g
                .fleet
                .interval(end.max(0) as u64, self.period as u64, weight);
            g.minutes.push((end, interval));
            g.clock = end;
        }
    }

    /// Notifications published so far.
    pub fn published(&self) -> Vec<Notification> {
        self.lock().published.clone()
    }

    /// The alias as it is now.
    pub fn alias(&self) -> AliasState {
        self.lock().alias.clone()
    }

    fn write(
        &self,
        target: &Target,
        revision_id: &str,
        claim: &Claim,
        f: impl FnOnce(&mut AliasState),
    ) -> Result<AliasState, PortError> {
        let mut g = self.lock();
        if g.alias.revision_id != revision_id {
            return Err(PortError::Conflict {
                expected: revision_id.to_string(),
                found: g.alias.revision_id.clone(),
            });
        }
        let _ = target;
        f(&mut g.alias);
        if let Claim::Set(c) = claim {
            g.alias.claim = Some(c.clone());
        }
        g.revision += 1;
        g.alias.revision_id = format!("rev-{}", g.revision);
        Ok(g.alias.clone())
    }
}

impl MetricsSource for SimulatedLambda {
    async fn fetch(
        &self,
        _config: &CanaryConfig,
        _target: &Target,
        range: TimeRange,
    ) -> Result<Fetched, PortError> {
        let g = self.lock();
        let mut out = Fetched::default();
        for (end, interval) in g
            .minutes
            .iter()
            .filter(|(end, _)| *end > range.start && *end <= range.end)
        {
            let _ = end;
            crate::look::merge(&mut out.baseline, &interval.baseline);
            crate::look::merge(&mut out.canary, &interval.canary);
        }
        out.notes
            .push("simulated fleet: per-invocation samples".to_string());
        Ok(out)
    }
}

impl TrafficRouter for SimulatedLambda {
    async fn read(&self, _target: &Target) -> Result<AliasState, PortError> {
        Ok(self.lock().alias.clone())
    }

    async fn set_canary_weight(
        &self,
        target: &Target,
        canary_weight: f64,
        revision_id: &str,
        claim: &Claim,
    ) -> Result<AliasState, PortError> {
        self.write(target, revision_id, claim, |a| {
            a.version = target.baseline_version.clone();
            a.additional = Some((target.canary_version.clone(), canary_weight));
        })
    }

    async fn promote(
        &self,
        target: &Target,
        revision_id: &str,
        claim: &Claim,
    ) -> Result<AliasState, PortError> {
        self.write(target, revision_id, claim, |a| {
            a.version = target.canary_version.clone();
            a.additional = None;
        })
    }

    async fn rollback(
        &self,
        target: &Target,
        revision_id: &str,
        claim: &Claim,
    ) -> Result<AliasState, PortError> {
        self.write(target, revision_id, claim, |a| {
            a.version = target.baseline_version.clone();
            a.additional = None;
        })
    }
}

impl Notifier for SimulatedLambda {
    async fn publish(&self, n: &Notification) -> Result<(), PortError> {
        self.lock().published.push(n.clone());
        Ok(())
    }
}
