//! What `harness run` tells the user: a progress bar on a terminal, plain lines
//! otherwise (logs, CI), both with done / running / failed / pending counts.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub done: usize,
    pub running: usize,
    pub failed: usize,
    pub pending: usize,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "done {}, running {}, failed {}, pending {}",
            self.done, self.running, self.failed, self.pending
        )
    }
}

#[derive(Debug)]
pub struct Reporter {
    /// Measured in planned training tokens, so the ETA weighs big jobs fairly.
    bar: Option<ProgressBar>,
}

impl Reporter {
    pub fn new(total_tokens: u64, done_tokens: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(total_tokens.max(1)),
                ProgressDrawTarget::stderr(),
            );
            let style = ProgressStyle::with_template(
                "{bar:30.cyan/blue} {percent:>3}% {msg} [{elapsed_precise}, ETA {eta}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_position(done_tokens);
            bar.reset_eta();
            bar.enable_steady_tick(Duration::from_millis(500));
            bar
        });
        Self { bar }
    }

    /// An event worth a line of its own (a job started, finished, failed).
    pub fn event(&self, line: &str, counts: Counts) {
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                bar.set_message(counts.to_string());
            }
            None => eprintln!("{line}  [{counts}]"),
        }
    }

    /// A quiet update: counts and tokens trained so far (running jobs included).
    pub fn update(&self, counts: Counts, tokens: u64) {
        if let Some(bar) = &self.bar {
            bar.set_message(counts.to_string());
            bar.set_position(tokens);
        }
    }

    pub fn finish(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.finish_with_message(line.to_owned()),
            None => eprintln!("{line}"),
        }
    }
}
