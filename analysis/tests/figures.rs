//! Every figure is produced as a non-blank PNG and a well-formed SVG; a figure without
//! data is skipped with a note.

mod common;

use analysis::synthetic::{SyntheticJob, write_job};
use jobspec::Objective;
use std::path::Path;

fn assert_svg_parses(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = quick_xml::Reader::from_str(&text);
    let mut elements = 0;
    let mut root = None;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)) => {
                elements += 1;
                root.get_or_insert_with(|| String::from_utf8_lossy(e.name().as_ref()).into_owned());
            }
            Ok(_) => {}
            Err(error) => panic!("{} is not well-formed XML: {error}", path.display()),
        }
    }
    assert_eq!(root.as_deref(), Some("svg"), "{}", path.display());
    assert!(
        elements > 50,
        "{} has only {elements} elements",
        path.display()
    );
}

#[test]
fn every_figure_is_written_non_blank_and_parses() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let results = common::study_tree(root.path());
    let summary =
        analysis::analyze(&results, &common::quick_options()).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = summary.figures.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "study_nano",
            "study_tiny",
            "loss_vs_accuracy",
            "crossover_map",
            "pareto",
            "ablation"
        ],
        "{summary}"
    );
    assert!(summary.skipped.is_empty(), "{:?}", summary.skipped);
    for figure in &summary.figures {
        let (width, height, pixels) = common::png_pixels(&figure.png);
        assert_eq!((width, height), (1600, 1000), "{}", figure.png.display());
        let mut distinct: Vec<[u8; 3]> = pixels.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(
            distinct.len() > 20,
            "{} has {} colours",
            figure.png.display(),
            distinct.len()
        );
        assert!(
            common::luminance_spread(&pixels) > 5.0,
            "{} looks blank",
            figure.png.display()
        );
        assert_svg_parses(&figure.svg);
    }
    let (_, _, study) = common::png_pixels(&summary.figures[0].png);
    let (red, blue) = common::red_and_blue(&study);
    assert!(
        red > 2000 && blue > 2000,
        "the study figure should show red DLM and blue AR curves: {red} red, {blue} blue"
    );
}

/// What an SVG draws: rectangles (x, y, width, height), texts (x, y, content) and the
/// number of points of each polyline.
#[derive(Default)]
struct Shapes {
    rects: Vec<(f64, f64, f64, f64)>,
    texts: Vec<(f64, f64, String)>,
    polylines: Vec<usize>,
}

fn svg_shapes(path: &Path) -> Shapes {
    use quick_xml::events::Event;
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = quick_xml::Reader::from_str(&text);
    let mut shapes = Shapes::default();
    let mut open_text: Option<(f64, f64)> = None;
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        match event {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let attribute = |name: &str| -> Option<String> {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == name.as_bytes())
                        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
                };
                let number = |name: &str| {
                    attribute(name)
                        .and_then(|v| v.parse::<f64>().ok())
                        .unwrap_or(f64::NAN)
                };
                match e.name().as_ref() {
                    b"rect" => shapes.rects.push((
                        number("x"),
                        number("y"),
                        number("width"),
                        number("height"),
                    )),
                    b"text" => open_text = Some((number("x"), number("y"))),
                    b"polyline" => shapes
                        .polylines
                        .push(attribute("points").map_or(0, |p| p.split_whitespace().count())),
                    _ => {}
                }
            }
            Event::Text(content) => {
                if let Some((x, y)) = open_text.take() {
                    let words = String::from_utf8_lossy(content.as_ref()).trim().to_string();
                    shapes.texts.push((x, y, words));
                }
            }
            _ => {}
        }
    }
    shapes
}

/// Every cell text of the crossover map lies inside a cell of positive size, and
/// there is one cell per (budget, row, panel). Returns the texts.
fn assert_map_cells(svg: &Path, cells: usize) -> Vec<String> {
    let shapes = svg_shapes(svg);
    let (width, _) = (1600.0, 0.0);
    let boxes: Vec<&(f64, f64, f64, f64)> = shapes
        .rects
        .iter()
        .filter(|r| r.2 > 10.0 && r.3 > 10.0 && r.2 < width)
        .collect();
    // Each cell is drawn twice (fill and border).
    assert_eq!(
        boxes.len(),
        2 * cells,
        "{}: {} boxes",
        svg.display(),
        boxes.len()
    );
    let cell_texts: Vec<&(f64, f64, String)> = shapes
        .texts
        .iter()
        .filter(|t| {
            let words = t.2.trim_end_matches('*');
            words.ends_with(" ep")
                || ["not reached", "ahead", "no evidence", "gap ", "["]
                    .iter()
                    .any(|w| words.starts_with(w))
        })
        .collect();
    assert!(
        cell_texts.len() >= cells,
        "{}: only {} cell texts",
        svg.display(),
        cell_texts.len()
    );
    for (x, y, words) in &cell_texts {
        assert!(
            boxes
                .iter()
                .any(|r| r.0 <= *x && *x <= r.0 + r.2 && r.1 <= *y && *y <= r.1 + r.3),
            "{}: `{words}` at ({x}, {y}) lies in no cell",
            svg.display()
        );
    }
    shapes.texts.into_iter().map(|t| t.2).collect()
}

/// Analyse `results` and return its crossover map's SVG.
fn crossover_map_of(results: &Path) -> std::path::PathBuf {
    let summary =
        analysis::analyze(results, &common::quick_options()).unwrap_or_else(|e| panic!("{e}"));
    summary
        .figures
        .iter()
        .find(|f| f.name == "crossover_map")
        .unwrap_or_else(|| panic!("{summary}"))
        .svg
        .clone()
}

/// Issue 15, item 1: one model size and one budget used to collapse every cell to zero
/// height.
#[test]
fn a_single_size_single_budget_map_draws_its_cells() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let results = common::tree_without_controls(root.path());
    // 1 budget x 1 size x (val_loss, acc_norm) x (early-stopped, raw).
    let texts = assert_map_cells(&crossover_map_of(&results), 4);
    assert!(
        texts.iter().any(|t| t.contains("early-stopped")),
        "{texts:?}"
    );
}

/// Issue 15, items 2 and 3: every epoch group of a (budget, size) cell is on the map,
/// and the Pareto figure draws one frontier per objective and budget.
#[test]
fn a_grid_over_epochs_shows_every_group_and_a_frontier_per_budget() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let results = common::grid_tree(root.path());
    let summary =
        analysis::analyze(&results, &common::quick_options()).unwrap_or_else(|e| panic!("{e}"));
    let figure = |name: &str| {
        summary
            .figures
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no {name}: {summary}"))
    };
    let (budgets, epochs) = (common::GRID_BUDGETS.len(), common::GRID_EPOCHS.len());
    // budgets x (2 sizes x epoch counts) rows x (early-stopped, raw) panels.
    let texts = assert_map_cells(&figure("crossover_map").svg, budgets * 2 * epochs * 2);
    for preset in ["nano", "tiny"] {
        for e in common::GRID_EPOCHS {
            let label = format!("{preset}, epochs={e}");
            assert!(texts.contains(&label), "no row {label}: {texts:?}");
        }
    }
    let frontiers = svg_shapes(&figure("pareto").svg)
        .polylines
        .into_iter()
        .filter(|&points| points > 2)
        .count();
    assert_eq!(
        frontiers,
        2 * budgets,
        "one frontier per objective and budget"
    );
    // Per-window losses make every comparison paired.
    let table = std::fs::read_to_string(results.join("analysis/crossover.csv")).unwrap_or_default();
    assert!(
        table.lines().skip(1).all(|l| l.contains("paired_items")),
        "{table}"
    );
    // And give each side's best a held-out reading (issue 29): the best checkpoint
    // chosen on half the windows, its value read on the other half.
    let mut reader = csv::Reader::from_reader(table.as_bytes());
    let header = reader.headers().cloned().unwrap_or_default();
    let column = |name: &str| header.iter().position(|h| h == name);
    let columns = [
        "dlm_best_held_out",
        "baseline_best_held_out",
        "dlm_best_optimism",
    ]
    .map(|name| column(name).unwrap_or_else(|| panic!("no {name} in {header:?}")));
    for record in reader.records().flatten() {
        for &c in &columns {
            assert!(
                record[c].parse::<f64>().is_ok_and(f64::is_finite),
                "{record:?}"
            );
        }
    }
}

/// The demo's shape: budgets zipped with epochs (25k x 64, 100k x 16), so the epoch
/// count follows the budget. The map then has one row per model and no empty cells,
/// instead of one row per epoch count with a "no pair" in every other cell.
#[test]
fn epochs_that_follow_the_budget_do_not_split_the_map() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let results = root.path().join("zipped");
    for (budget, epochs) in [(25_000, 8.0), (100_000, 2.0)] {
        for objective in [Objective::Ar, Objective::Dlm] {
            let milestones = analysis::synthetic::log2_epochs(epochs);
            let losses: Vec<f64> = milestones
                .iter()
                .map(|&e| match objective {
                    Objective::Dlm => 3.4 - 0.45 * (1.0 + e).log2(),
                    _ => 3.0 - 0.4 * (1.0 + e).log2() + 0.1 * e,
                })
                .collect();
            let mut job = SyntheticJob::new(objective, 0, "tiny", budget).metric(
                "val_loss",
                "loss",
                &milestones,
                &losses,
                0.01,
            );
            job.epochs = epochs;
            write_job(&results, &job).unwrap_or_else(|e| panic!("writing a synthetic job: {e}"));
        }
    }
    // 2 budgets x 1 row x (early-stopped, raw).
    let texts = assert_map_cells(&crossover_map_of(&results), 2 * 2);
    assert!(texts.iter().any(|t| t == "tiny"), "{texts:?}");
    assert!(!texts.iter().any(|t| t == "no pair"), "{texts:?}");
}

/// Issue 15, item 1: a categorical axis of one bar collapsed it to zero width.
#[test]
fn an_ablation_of_one_run_draws_its_bar() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let results = root.path().join("one-bar");
    let milestones = [1.0, 2.0, 4.0];
    let job = SyntheticJob::new(Objective::ArMasked(0.3), 0, "nano", 20_000).metric(
        "val_loss",
        "loss",
        &milestones,
        &[3.0, 2.8, 2.7],
        0.01,
    );
    write_job(&results, &job).unwrap_or_else(|e| panic!("writing a synthetic job: {e}"));
    let summary =
        analysis::analyze(&results, &common::quick_options()).unwrap_or_else(|e| panic!("{e}"));
    let ablation = summary
        .figures
        .iter()
        .find(|f| f.name == "ablation")
        .unwrap_or_else(|| panic!("no ablation: {summary}"));
    let shapes = svg_shapes(&ablation.svg);
    // The bar: wider than the 20-pixel error-bar caps, and tall.
    assert!(
        shapes
            .rects
            .iter()
            .any(|r| r.2 > 40.0 && r.3 > 40.0 && r.2 < 1500.0),
        "no bar of positive size: {:?}",
        shapes.rects
    );
    assert!(
        shapes.texts.iter().any(|t| t.2.starts_with("ar_masked")),
        "{:?}",
        shapes.texts
    );
}

#[test]
fn a_figure_without_data_is_skipped_with_a_note() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let results = common::tree_without_controls(root.path());
    let summary =
        analysis::analyze(&results, &common::quick_options()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.skipped.len(), 1, "{summary}");
    assert_eq!(summary.skipped[0].0, "ablation");
    assert!(
        summary
            .to_string()
            .contains("skipped ablation: no AR-control runs"),
        "{summary}"
    );
    let report = std::fs::read_to_string(results.join("analysis/report.md")).unwrap_or_default();
    assert!(
        report.contains("Figure ablation skipped: no AR-control runs"),
        "{report}"
    );
}
