//! The judging options `diff` and `check --baseline` share: the same rules, flags and
//! defaults for both (docs/ci.md, "One judgement").
//!
//! Owns: the flags. Must not: judge (`ci::gate`).

use clap::Args;

use super::args::parse_percent;
use crate::ci::gate::GateOverrides;
use crate::units::parse_duration_ns;

#[derive(Debug, Args)]
pub struct GateArgs {
    /// Relative growth of wait per second that counts as a regression (and drop as an
    /// improvement) [default: the budget's, else 400%, i.e. more than ×5]
    #[arg(long, visible_alias = "threshold", value_parser = parse_percent, value_name = "PCT")]
    pub max_regression: Option<f64>,
    /// A site's change counts only if at least this share of the run's lock contention
    /// per second [default: the budget's, else 20%]
    #[arg(long, value_parser = parse_percent, value_name = "PCT")]
    pub min_share: Option<f64>,
    /// …and at least this much wait per second, e.g. 2ms [default: the budget's, else 2ms]
    #[arg(long, value_parser = parse_duration_ns, value_name = "DURATION")]
    pub min_wait_per_sec: Option<u64>,
    /// Judge condvar and other event waits too (by default only lock contention)
    #[arg(long)]
    pub include_event_waits: bool,
}

impl GateArgs {
    pub fn overrides(&self) -> GateOverrides {
        GateOverrides {
            max_regression: self.max_regression,
            min_share: self.min_share,
            min_wait_per_sec_ns: self.min_wait_per_sec,
            include_event_waits: self.include_event_waits,
        }
    }

    /// Whether any judging flag was given.
    pub fn given(&self) -> bool {
        self.overrides() != GateOverrides::default()
    }
}
