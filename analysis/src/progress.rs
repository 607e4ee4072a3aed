//! The progress bar of `analyze` (issue 20): silent for a quick analysis, a bar on
//! stderr once a stage has run for more than a second and a half, never on a pipe or
//! a file (indicatif draws only to a terminal).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a stage runs before its bar appears.
const QUIET_FOR: Duration = Duration::from_millis(1500);

/// One stage's bar: `tick` from any thread (rayon workers included).
pub struct Stage {
    bar: ProgressBar,
    started: Instant,
    shown: AtomicBool,
    enabled: bool,
}

impl Stage {
    /// A stage of `total` steps named `name` ("crossovers", ...); `enabled` false
    /// never draws (library callers, tests).
    pub fn new(name: &str, total: usize, enabled: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::hidden());
        let template = format!("{name:>11} [{{bar:30}}] {{pos}}/{{len}} eta {{eta}}");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        Self {
            bar,
            started: Instant::now(),
            shown: AtomicBool::new(false),
            enabled,
        }
    }

    pub fn tick(&self) {
        self.bar.inc(1);
        if self.enabled
            && self.started.elapsed() > QUIET_FOR
            && !self.shown.swap(true, Ordering::Relaxed)
        {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    /// Remove the bar (the summary follows on stdout).
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
