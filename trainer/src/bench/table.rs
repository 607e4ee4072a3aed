//! The table `trainer bench` prints.

use crate::bench::case::{BenchResult, Measurement};

/// The ratio cell: the median of the paired ratios with their range, e.g.
/// `0.98 [0.91, 1.05]`; the ratio of the medians when there are no pairs.
fn ratio(harness: f64, reference: Option<&Measurement>, pairs: &[f64]) -> String {
    let mut sorted = pairs.to_vec();
    sorted.sort_by(f64::total_cmp);
    match (sorted.as_slice(), reference) {
        ([], None) => "-".into(),
        ([], Some(reference)) => format!("{:.2}", harness / reference.tokens_per_s),
        ([only], _) => format!("{only:.2}"),
        ([low, .., high], _) => {
            let middle = sorted[(sorted.len() - 1) / 2];
            format!("{middle:.2} [{low:.2}, {high:.2}]")
        }
    }
}

fn tokens(reference: Option<&Measurement>) -> String {
    reference.map_or_else(
        || "-".into(),
        |reference| format!("{:.0}", reference.tokens_per_s),
    )
}

/// The table `trainer bench` prints: the harness, then PyTorch and the ratios
/// harness / PyTorch (above 1: the harness is faster): the median over repeats of each
/// back-to-back pair's ratio, with the lowest and highest.
pub fn table(results: &[BenchResult]) -> String {
    let mut out = String::from(
        "| preset | params | objective | device | precision | batch x seq | tokens/s | MFU | peak MiB | estimate MiB | PyTorch eager tokens/s | harness/eager | torch.compile tokens/s | harness/compile |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for result in results {
        let case = &result.case;
        let device = if case.device.starts_with("cuda") {
            case.device.clone()
        } else {
            format!("cpu x{}", case.threads)
        };
        out.push_str(&format!(
            "| {} | {:.1}M | {} | {} | {:?} | {} x {} | {:.0} | {} | {:.0} | {:.0} | {} | {} | {} | {} |\n",
            case.preset,
            result.params as f64 / 1e6,
            case.objective,
            device,
            result.precision,
            case.batch_size,
            case.seq_len,
            result.harness.tokens_per_s,
            result
                .mfu
                .map_or_else(|| "-".into(), |mfu| format!("{:.1}%", 100.0 * mfu)),
            result.harness.peak_mem_mib,
            result.estimate_mib,
            tokens(result.eager.as_ref()),
            ratio(
                result.harness.tokens_per_s,
                result.eager.as_ref(),
                &result.eager_ratios
            ),
            tokens(result.compiled.as_ref()),
            ratio(
                result.harness.tokens_per_s,
                result.compiled.as_ref(),
                &result.compiled_ratios
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(tokens_per_s: f64) -> Measurement {
        Measurement {
            tokens_per_s,
            step_ms: 0.0,
            peak_mem_mib: 0.0,
        }
    }

    #[test]
    fn ratio_cell_prefers_paired_ratios_with_their_range() {
        let reference = at(50.0);
        let cases: [(Option<&Measurement>, &[f64], &str); 5] = [
            (None, &[], "-"),
            (Some(&reference), &[], "2.00"),
            (Some(&reference), &[0.97], "0.97"),
            (Some(&reference), &[1.05, 0.91, 0.98], "0.98 [0.91, 1.05]"),
            (None, &[1.2, 0.8, 1.0, 0.9], "0.90 [0.80, 1.20]"),
        ];
        for (reference, pairs, expected) in cases {
            assert_eq!(ratio(100.0, reference, pairs), expected, "{pairs:?}");
        }
    }
}
