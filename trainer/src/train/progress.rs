//! Progress on a terminal (a bar) or in a log file (plain lines).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
    total: u64,
}

impl Progress {
    pub fn new(total: u64, start: u64, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{bar:30} {pos}/{len} steps [{elapsed_precise} < {eta_precise}] {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_position(start);
            bar
        });
        Self { bar, quiet, total }
    }

    pub fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None if !self.quiet => eprintln!("{line}"),
            None => {}
        }
    }

    pub fn tick(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    pub fn row(&self, done: u64, epoch: f64, loss: f64, tokens_per_s: f64, mfu: Option<f64>) {
        let mfu = mfu.map_or_else(String::new, |mfu| format!(" MFU {:.1}%", 100.0 * mfu));
        let message = format!("epoch {epoch:.2} loss {loss:.4} {tokens_per_s:.0} tok/s{mfu}");
        match &self.bar {
            Some(bar) => bar.set_message(message),
            None if !self.quiet => eprintln!("step {done}/{} {message}", self.total),
            None => {}
        }
    }

    pub fn finish(&self, line: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if !self.quiet {
            eprintln!("{line}");
        }
    }
}

/// Seconds since this process started (Linux: /proc, 10 ms resolution), for the
/// start-up a resumed job pays before its first step (issue 27); None elsewhere.
pub fn process_age_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Field 22 (starttime, in clock ticks since boot) counts from after the `)` that
    // ends the command name, which may hold spaces.
    let after_name = stat.rsplit_once(')')?.1;
    let start_ticks: f64 = after_name.split_whitespace().nth(19)?.parse().ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    // USER_HZ is 100 on every Linux architecture this runs on.
    Some((uptime - start_ticks / 100.0).max(0.0))
}
