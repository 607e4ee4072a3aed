//! A missing file, a corrupt line and a wrong schema each give an error that names the
//! file, the line (jsonl) or row (Arrow), and the field.

use std::path::{Path, PathBuf};

use benchmarks::{BenchmarkError, Location, TASKS, load_file, load_task};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn data(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(relative)
}

/// Writes `lines` as `name` in a fresh temp folder (kept alive by the returned guard).
fn write(name: &str, lines: &[&str]) -> Result<(tempfile::TempDir, PathBuf), std::io::Error> {
    let folder = tempfile::tempdir()?;
    let path = folder.path().join(name);
    std::fs::write(&path, lines.join("\n") + "\n")?;
    Ok((folder, path))
}

/// The error of loading `path` as `task`, with its message.
fn failure(task: &str, path: &Path) -> (BenchmarkError, String) {
    match load_file(task, path) {
        Ok(items) => panic!(
            "{}: expected an error, got {} items",
            path.display(),
            items.len()
        ),
        Err(error) => {
            let message = error.to_string();
            (error, message)
        }
    }
}

const PIQA_GOOD: &str = r#"{"goal": "g", "sol1": "a", "sol2": "b", "label": 0}"#;

#[test]
fn corrupt_line_names_file_and_line() -> TestResult {
    let (_folder, path) = write("piqa.jsonl", &[PIQA_GOOD, "", r#"{"goal": "g", "sol1": "#])?;
    let (error, message) = failure("piqa", &path);
    assert!(
        matches!(
            error,
            BenchmarkError::CorruptLine {
                location: Location::Line(3),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        message.starts_with(&format!("{}: line 3: ", path.display())),
        "{message}"
    );
    Ok(())
}

#[test]
fn a_line_that_is_not_an_object_is_corrupt() -> TestResult {
    let (_folder, path) = write("piqa.jsonl", &[PIQA_GOOD, "[1, 2]"])?;
    let (error, _) = failure("piqa", &path);
    assert!(
        matches!(
            error,
            BenchmarkError::CorruptLine {
                location: Location::Line(2),
                ..
            }
        ),
        "{error:?}"
    );
    Ok(())
}

/// (task, file name, lines, line at fault, field, words of the problem)
type SchemaCase = (
    &'static str,
    &'static str,
    &'static [&'static str],
    usize,
    &'static str,
    &'static str,
);

#[test]
fn wrong_schema_names_file_line_and_field() -> TestResult {
    let cases: &[SchemaCase] = &[
        (
            "piqa",
            "missing.jsonl",
            &[PIQA_GOOD, r#"{"goal": "g", "sol1": "a", "label": 0}"#],
            2,
            "sol2",
            "missing",
        ),
        (
            "piqa",
            "typed.jsonl",
            &[r#"{"goal": 3, "sol1": "a", "sol2": "b", "label": 0}"#],
            1,
            "goal",
            "expected a string, found 3",
        ),
        (
            "piqa",
            "gold.jsonl",
            &[r#"{"goal": "g", "sol1": "a", "sol2": "b", "label": 2}"#],
            1,
            "label",
            "out of range",
        ),
        (
            "hellaswag",
            "label.jsonl",
            &[
                r#"{"activity_label": "a", "ctx_a": "b", "ctx_b": "c", "endings": ["d"], "label": ""}"#,
            ],
            1,
            "label",
            "non-negative integer",
        ),
        (
            "arc_easy",
            "nested.jsonl",
            &[r#"{"question": "q", "choices": {"label": ["A"]}, "answerKey": "A"}"#],
            1,
            "choices.text",
            "missing",
        ),
        (
            "arc_easy",
            "key.jsonl",
            &[r#"{"question": "q", "choices": {"text": ["t"], "label": ["A"]}, "answerKey": "E"}"#],
            1,
            "answerKey",
            "not among",
        ),
        (
            "winogrande",
            "blank.jsonl",
            &[r#"{"sentence": "no blank", "option1": "a", "option2": "b", "answer": "1"}"#],
            1,
            "sentence",
            "blank",
        ),
        (
            "copa",
            "question.jsonl",
            &[
                r#"{"premise": "p.", "choice1": "a", "choice2": "b", "question": "why", "label": 0}"#,
            ],
            1,
            "question",
            "cause",
        ),
        (
            "mmlu",
            "choices.jsonl",
            &[r#"{"question": "q", "subject": "s", "choices": ["a", "b"], "answer": 0}"#],
            1,
            "choices",
            "expected 4 choices",
        ),
        (
            "boolq",
            "answer.jsonl",
            &[r#"{"question": "q", "passage": "p", "answer": "yes"}"#],
            1,
            "answer",
            "boolean",
        ),
        // Requests form: nested fields, a label that changes within an item, a
        // request of another task.
        (
            "piqa",
            "request.jsonl",
            &[r#"{"request": {"context": "c"}, "doc_id": 0, "idx": 0, "label": 0}"#],
            1,
            "request.continuation",
            "missing",
        ),
        (
            "piqa",
            "label.jsonl",
            &[
                r#"{"request": {"context": "c", "continuation": " a"}, "doc_id": 0, "idx": 0, "label": 0}"#,
                r#"{"request": {"context": "c", "continuation": " b"}, "doc_id": 0, "idx": 1, "label": 1}"#,
            ],
            2,
            "label",
            "differs",
        ),
        (
            "piqa",
            "range.jsonl",
            &[
                r#"{"request": {"context": "c", "continuation": " a"}, "doc_id": 0, "idx": 0, "label": 3}"#,
            ],
            1,
            "label",
            "out of range",
        ),
        (
            "hellaswag",
            "other.jsonl",
            &[
                r#"{"request": {"context": "c", "continuation": " a"}, "doc_id": 0, "idx": 0, "label": 0, "task_name": "piqa"}"#,
            ],
            1,
            "task_name",
            "not a request of hellaswag",
        ),
    ];
    for &(task, name, lines, line, field, problem_words) in cases {
        let (_folder, path) = write(name, lines)?;
        let (error, message) = failure(task, &path);
        match &error {
            BenchmarkError::Schema {
                path: at,
                location,
                field: named,
                problem,
            } => {
                assert_eq!(at, &path, "{name}");
                assert_eq!(*location, Location::Line(line), "{name}");
                assert_eq!(named, field, "{name}");
                assert!(problem.contains(problem_words), "{name}: {problem}");
            }
            other => panic!("{name}: expected a schema error, got {other:?}"),
        }
        let prefix = format!("{}: line {line}: field '{field}': ", path.display());
        assert!(message.starts_with(&prefix), "{message}");
    }
    Ok(())
}

#[test]
fn wrong_schema_in_arrow_names_the_row() {
    // The COPA file read as PIQA: the first row has no `goal`.
    let path = data("native/copa.arrow");
    let (error, message) = failure("piqa", &path);
    assert!(
        matches!(&error, BenchmarkError::Schema { location: Location::Row(0), field, .. } if field == "goal"),
        "{error:?}"
    );
    assert_eq!(
        message,
        format!("{}: row 0: field 'goal': missing", path.display())
    );
}

#[test]
fn missing_file_names_the_file() {
    let path = data("native/no-such-file.jsonl");
    let (error, message) = failure("piqa", &path);
    assert!(
        matches!(&error, BenchmarkError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{error:?}"
    );
    assert!(
        message.starts_with(&path.display().to_string()),
        "{message}"
    );
}

#[test]
fn unfetched_task_says_to_run_just_benchmarks() -> TestResult {
    let root = tempfile::tempdir()?;
    for task in TASKS {
        let Err(error) = load_task(task, root.path()) else {
            panic!("{task}: loaded from an empty folder");
        };
        let message = error.to_string();
        assert!(
            matches!(error, BenchmarkError::NotFetched { .. }),
            "{task}: {error:?}"
        );
        assert!(
            message.contains(&root.path().display().to_string()),
            "{message}"
        );
        assert!(message.contains("just benchmarks"), "{message}");
    }
    Ok(())
}

#[test]
fn unknown_task_lists_the_tasks() {
    let Err(error) = load_file("hella_swag", &data("native/piqa.jsonl")) else {
        panic!("an unknown task loaded");
    };
    let message = error.to_string();
    assert!(message.contains("'hella_swag'"), "{message}");
    assert!(message.contains(&TASKS.join(", ")), "{message}");
}

#[test]
fn empty_file_and_unknown_file_kind_are_errors() -> TestResult {
    let (_folder, empty) = write("empty.jsonl", &[""])?;
    assert!(matches!(
        failure("piqa", &empty).0,
        BenchmarkError::Empty { .. }
    ));
    let (_folder, csv) = write("piqa.csv", &["goal,sol1,sol2,label"])?;
    assert!(matches!(
        failure("piqa", &csv).0,
        BenchmarkError::UnsupportedFormat { .. }
    ));
    Ok(())
}

#[test]
fn damaged_gzip_is_a_corrupt_line() -> TestResult {
    let mut bytes = std::fs::read(data("requests/hellaswag.jsonl.gz"))?;
    bytes.truncate(bytes.len() / 2);
    let folder = tempfile::tempdir()?;
    let path = folder.path().join("hellaswag.jsonl.gz");
    std::fs::write(&path, bytes)?;
    let (error, _) = failure("hellaswag", &path);
    assert!(
        matches!(error, BenchmarkError::CorruptLine { .. }),
        "{error:?}"
    );
    Ok(())
}

#[test]
fn a_file_that_is_not_arrow_is_an_arrow_error() -> TestResult {
    let (_folder, path) = write("copa.arrow", &["not arrow"])?;
    assert!(matches!(
        failure("copa", &path).0,
        BenchmarkError::Arrow { .. }
    ));
    Ok(())
}
