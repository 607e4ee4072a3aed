//! A synthetic results folder with known answers (worked by hand in the comments),
//! shared by the integration tests.

#![allow(dead_code)]

use analysis::synthetic::{SyntheticJob, write_job};
use jobspec::Objective;
use jobspec::status::State;
use std::path::{Path, PathBuf};

pub const EPOCHS: [f64; 5] = [1.0, 2.0, 4.0, 8.0, 16.0];

/// Add `offset` to every value (seed replicates around a known mean).
fn shifted(values: &[f64], offset: f64) -> Vec<f64> {
    values.iter().map(|v| v + offset).collect()
}

/// A job with val_loss, hellaswag acc and acc_norm at `epochs`.
// The fixtures below read as tables of numbers, one argument per curve.
#[allow(clippy::too_many_arguments)]
fn job(
    objective: Objective,
    seed: u64,
    preset: &str,
    unique: u64,
    epochs: &[f64],
    loss: &[f64],
    acc: &[f64],
    acc_norm: &[f64],
) -> SyntheticJob {
    SyntheticJob::new(objective, seed, preset, unique)
        .metric("val_loss", "loss", epochs, loss, 0.01)
        .metric("hellaswag", "acc", epochs, acc, 0.02)
        .metric("hellaswag", "acc_norm", epochs, acc_norm, 0.02)
}

/// Three comparison groups:
/// - A (nano, 20k unique): AR and DLM with 2 seeds each, plus AR-masked(0.3) and a
///   failed AR-dropout(0.1). acc_norm: AR [.30 .35 .38 .38 .36], DLM [.25 .30 .36 .40 .44]
///   -> advantage [-.05 -.05 -.02 +.02 +.08] -> crossed at 4 + 4 x .02/.04 = 6 epochs
///   (120k tokens). val_loss: AR [3.0 2.6 2.4 2.5 2.8], DLM [3.4 3.0 2.6 2.45 2.4] ->
///   crossed at 4 + 4 x .2/.25 = 7.2 epochs. acc: DLM ahead from the start.
///   vs AR-masked acc_norm [.27 .33 .37 .41 .42]: crossed at 8 + 8 x .01/.03 = 10.667.
///   vs the failed AR-dropout (evaluated at 1, 2 only): not reached, gap -0.04.
/// - B (nano, 40k): the DLM is still running (evaluated at 1, 2, 4): acc_norm ahead
///   from the start; val_loss not reached (gap +0.2).
/// - C (tiny, 20k): the DLM never catches up: acc_norm gap -0.05, val_loss gap +0.15.
///   Its DLM's eval.csv ends with a garbage row; its AR's train.csv has a bad header.
/// - One job folder with an invalid job.yaml (skipped with a warning).
pub fn study_tree(root: &Path) -> PathBuf {
    let results = root.join("study");
    let write = |job: SyntheticJob| {
        write_job(&results, &job).unwrap_or_else(|e| panic!("writing a synthetic job: {e}"))
    };
    let (ar, dlm) = (Objective::Ar, Objective::Dlm);
    let a_loss = [3.0, 2.6, 2.4, 2.5, 2.8];
    let a_acc = [0.28, 0.33, 0.36, 0.37, 0.35];
    let a_norm = [0.30, 0.35, 0.38, 0.38, 0.36];
    let d_loss = [3.4, 3.0, 2.6, 2.45, 2.4];
    let d_acc = [0.30, 0.34, 0.38, 0.40, 0.42];
    let d_norm = [0.25, 0.30, 0.36, 0.40, 0.44];
    for (seed, offset) in [(0, 0.004), (1, -0.004)] {
        write(job(
            ar,
            seed,
            "nano",
            20_000,
            &EPOCHS,
            &shifted(&a_loss, offset),
            &shifted(&a_acc, offset),
            &shifted(&a_norm, offset),
        ));
        let d = job(
            dlm,
            seed,
            "nano",
            20_000,
            &EPOCHS,
            &shifted(&d_loss, -offset),
            &shifted(&d_acc, -offset),
            &shifted(&d_norm, -offset),
        );
        write(d.metric(
            "hellaswag",
            "score_mc_stderr",
            &EPOCHS,
            &[0.01; 5],
            f64::NAN,
        ));
    }
    write(job(
        Objective::ArMasked(0.3),
        0,
        "nano",
        20_000,
        &EPOCHS,
        &[3.1, 2.7, 2.5, 2.45, 2.5],
        &[0.29, 0.34, 0.37, 0.38, 0.36],
        &[0.27, 0.33, 0.37, 0.41, 0.42],
    ));
    let dropout = job(
        Objective::ArDropout(0.1),
        0,
        "nano",
        20_000,
        &EPOCHS[..2],
        &[3.05, 2.65],
        &[0.27, 0.32],
        &[0.29, 0.34],
    );
    write(dropout.state(State::Failed, Some("CUDA out of memory")));
    write(job(
        ar,
        0,
        "nano",
        40_000,
        &EPOCHS,
        &[2.9, 2.5, 2.3, 2.4, 2.7],
        &[0.30, 0.34, 0.36, 0.35, 0.33],
        &[0.32, 0.36, 0.38, 0.37, 0.35],
    ));
    write(
        job(
            dlm,
            0,
            "nano",
            40_000,
            &EPOCHS[..3],
            &[3.2, 2.8, 2.5],
            &[0.31, 0.36, 0.40],
            &[0.33, 0.38, 0.42],
        )
        .state(State::Running, None),
    );
    let c_ar = write(job(
        ar,
        0,
        "tiny",
        20_000,
        &EPOCHS,
        &[2.8, 2.4, 2.2, 2.1, 2.05],
        &[0.33, 0.38, 0.41, 0.43, 0.44],
        &[0.35, 0.40, 0.43, 0.45, 0.46],
    ));
    std::fs::write(c_ar.join("train.csv"), "nonsense\n1,2\n").unwrap_or_else(|e| panic!("{e}"));
    let c_dlm = write(job(
        dlm,
        0,
        "tiny",
        20_000,
        &EPOCHS,
        &[3.2, 2.8, 2.5, 2.3, 2.2],
        &[0.28, 0.33, 0.36, 0.38, 0.39],
        &[0.30, 0.35, 0.38, 0.40, 0.41],
    ));
    let eval = std::fs::read_to_string(c_dlm.join("eval.csv")).unwrap_or_default();
    std::fs::write(c_dlm.join("eval.csv"), eval + "garbage,row\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let broken = results.join("jobs").join("000000broken");
    std::fs::create_dir_all(&broken).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(broken.join("job.yaml"), "objective: [\n").unwrap_or_else(|e| panic!("{e}"));
    results
}

/// The same study without the AR controls (so the ablation figure has no data).
pub fn tree_without_controls(root: &Path) -> PathBuf {
    let results = root.join("plain");
    let write = |job: SyntheticJob| {
        write_job(&results, &job).unwrap_or_else(|e| panic!("writing a synthetic job: {e}"))
    };
    write(job(
        Objective::Ar,
        0,
        "nano",
        20_000,
        &EPOCHS,
        &[3.0, 2.6, 2.4, 2.5, 2.8],
        &[0.28, 0.33, 0.36, 0.37, 0.35],
        &[0.30, 0.35, 0.38, 0.38, 0.36],
    ));
    write(job(
        Objective::Dlm,
        0,
        "nano",
        20_000,
        &EPOCHS,
        &[3.4, 3.0, 2.6, 2.45, 2.4],
        &[0.30, 0.34, 0.38, 0.40, 0.42],
        &[0.25, 0.30, 0.36, 0.40, 0.44],
    ));
    results
}

/// Analyse with few draws (fast) and a fixed seed.
pub fn quick_options() -> analysis::AnalyzeOptions {
    analysis::AnalyzeOptions {
        bootstrap: 200,
        ..Default::default()
    }
}

/// Width, height and RGB pixels of a PNG file.
pub fn png_pixels(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut buffer = vec![0; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buffer)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let channels = info.color_type.samples();
    let pixels = buffer[..info.buffer_size()]
        .chunks(channels)
        .map(|p| {
            if channels >= 3 {
                [p[0], p[1], p[2]]
            } else {
                [p[0], p[0], p[0]]
            }
        })
        .collect();
    (info.width, info.height, pixels)
}

/// Standard deviation of the pixels' luminance: about 0 for a blank image.
pub fn luminance_spread(pixels: &[[u8; 3]]) -> f64 {
    let luminance: Vec<f64> = pixels
        .iter()
        .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
        .collect();
    let n = luminance.len().max(1) as f64;
    let mean = luminance.iter().sum::<f64>() / n;
    (luminance.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / n).sqrt()
}

/// Pixels that are clearly red (DLM, any shade) and clearly blue (AR, any shade).
pub fn red_and_blue(pixels: &[[u8; 3]]) -> (usize, usize) {
    let [r, g, b] = [0, 1, 2];
    let red = pixels
        .iter()
        .filter(|p| p[r] > 90 && p[r] > p[g].saturating_add(60) && p[r] > p[b].saturating_add(60))
        .count();
    let blue = pixels
        .iter()
        .filter(|p| p[b] > 90 && p[b] > p[r].saturating_add(40))
        .count();
    (red, blue)
}

/// A pb-grid-shaped study (sweeps/pb-grid.yaml, reduced): 2 model sizes x 3
/// unique-token budgets x 4 epoch counts x AR/DLM, validation loss only, with
/// per-window losses (eval_items.csv) at log2 milestones. Each (budget, size) cell of
/// the crossover map holds 4 groups, one per epoch count.
pub const GRID_BUDGETS: [u64; 3] = [20_000, 40_000, 80_000];
pub const GRID_EPOCHS: [f64; 4] = [1.0, 2.0, 4.0, 8.0];

pub fn grid_tree(root: &Path) -> PathBuf {
    let results = root.join("grid");
    let windows = 40;
    for preset in ["nano", "tiny"] {
        for budget in GRID_BUDGETS {
            for epochs in GRID_EPOCHS {
                for objective in [Objective::Ar, Objective::Dlm] {
                    let milestones = analysis::synthetic::log2_epochs(epochs);
                    // AR falls fast and overfits with repetition (more so on a small
                    // budget); the DLM falls slower but keeps falling.
                    let scale = (budget as f64 / 20_000.0).log2();
                    let scores: Vec<Vec<f64>> = milestones
                        .iter()
                        .map(|&e| {
                            let mean = match objective {
                                Objective::Dlm => 3.4 - 0.45 * (1.0 + e).log2(),
                                _ => 3.0 - 0.4 * (1.0 + e).log2() + 0.06 * e / (1.0 + scale),
                            };
                            // Window difficulty shared by both objectives, plus a
                            // small objective-specific wobble.
                            (0..windows)
                                .map(|w| {
                                    let w = f64::from(w);
                                    mean + 0.3 * (w * 0.7).sin()
                                        + 0.05
                                            * ((w + e)
                                                * if objective == Objective::Dlm {
                                                    1.3
                                                } else {
                                                    2.1
                                                })
                                            .cos()
                                })
                                .collect()
                        })
                        .collect();
                    let mut job = SyntheticJob::new(objective, 0, preset, budget).item_metric(
                        "val_loss",
                        "loss",
                        &milestones,
                        &scores,
                    );
                    job.epochs = epochs;
                    write_job(&results, &job)
                        .unwrap_or_else(|e| panic!("writing a synthetic job: {e}"));
                }
            }
        }
    }
    results
}
