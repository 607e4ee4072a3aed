//! Every figure is produced as a non-blank PNG and a well-formed SVG; a figure without
//! data is skipped with a note.

mod common;

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
