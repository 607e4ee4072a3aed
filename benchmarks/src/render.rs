//! Native renderers: one record of a task's usual (Hugging Face) form to an [`Item`],
//! as lm-evaluation-harness renders it for zero-shot loglikelihood scoring (its
//! `lm_eval/tasks/<task>/` yaml and utils.py; the default target delimiter " " is
//! already part of each continuation here). One renderer per task serves both .jsonl
//! records and .arrow rows, which are turned into the same JSON values first.

use serde_json::Value;

use crate::error::FieldError;
use crate::{Item, Task};

/// Renders record number `index` (0-based) of a file of `task`'s native form.
pub(crate) fn render(task: Task, record: &Value, index: usize) -> Result<Item, FieldError> {
    let id = format!("{}/{index}", task.name());
    match task {
        Task::Hellaswag => hellaswag(id, record),
        Task::Mmlu => mmlu(record, index),
        Task::ArcEasy | Task::ArcChallenge => arc(id, record),
        Task::Piqa => piqa(id, record),
        Task::Winogrande => winogrande(id, record),
        Task::Sciq => sciq(id, record),
        Task::Boolq => boolq(id, record),
        Task::Copa => copa(id, record),
        Task::Openbookqa => openbookqa(id, record),
        Task::Lambada => lambada(id, record),
    }
}

/// HellaSwag (`hellaswag/utils.py`): query = preprocess(activity_label + ": " + ctx_a +
/// " " + ctx_b.capitalize()), choices " " + preprocess(ending), gold int(label).
fn hellaswag(id: String, record: &Value) -> Result<Item, FieldError> {
    let ctx = format!(
        "{} {}",
        string(record, "ctx_a")?,
        capitalize(string(record, "ctx_b")?)
    );
    let query = hellaswag_preprocess(&format!("{}: {ctx}", string(record, "activity_label")?));
    let continuations = strings(record, "endings")?
        .into_iter()
        .map(|ending| format!(" {}", hellaswag_preprocess(ending)))
        .collect::<Vec<_>>();
    shared(id, &query, continuations, index(record, "label")?, "label")
}

/// HellaSwag's `preprocess`: strip; " [title]" -> ". "; drop `[...]` (the WikiHow
/// artifacts; regex `\[.*?\]`, which does not cross a newline); one pass of "  " -> " ".
pub(crate) fn hellaswag_preprocess(text: &str) -> String {
    let text = text.trim().replace(" [title]", ". ");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        match after.find([']', '\n']) {
            Some(close) if after[close..].starts_with(']') => {
                out.push_str(&rest[..open]);
                rest = &after[close + 1..];
            }
            // No closing bracket on this line: keep the '[' and scan on after it.
            _ => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace("  ", " ")
}

/// Python's `str.capitalize`: first character upper case, the rest lower case.
fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.as_str().to_lowercase().chars())
            .collect(),
        None => String::new(),
    }
}

/// MMLU (`mmlu/default/_default_template_yaml`, zero-shot): the subject description,
/// then "{question.strip()}\nA. ..\nB. ..\nC. ..\nD. ..\nAnswer:"; continuations
/// " A" .. " D"; gold `answer`. The id names the subject: `mmlu/<subject>/<index>`.
fn mmlu(record: &Value, index_in_file: usize) -> Result<Item, FieldError> {
    let subject = string(record, "subject")?;
    let choices = strings(record, "choices")?;
    if choices.len() != 4 {
        let problem = format!("expected 4 choices, found {}", choices.len());
        return Err(FieldError::new("choices", problem));
    }
    let context = format!(
        "The following are multiple choice questions (with answers) about {}.\n\n{}\n\
         A. {}\nB. {}\nC. {}\nD. {}\nAnswer:",
        subject.replace('_', " "),
        string(record, "question")?.trim(),
        choices[0],
        choices[1],
        choices[2],
        choices[3],
    );
    let continuations = [" A", " B", " C", " D"].map(String::from).to_vec();
    let id = format!("mmlu/{subject}/{index_in_file}");
    shared(
        id,
        &context,
        continuations,
        index(record, "answer")?,
        "answer",
    )
}

/// ARC-Easy and ARC-Challenge (`arc/arc_easy.yaml`): "Question: {question}\nAnswer:",
/// choices " " + choices.text, gold = position of answerKey in choices.label.
fn arc(id: String, record: &Value) -> Result<Item, FieldError> {
    let context = format!("Question: {}\nAnswer:", string(record, "question")?);
    let gold = labelled_gold(record, string(record, "answerKey")?)?;
    shared(
        id,
        &context,
        spaced(strings(record, "choices.text")?),
        gold,
        "answerKey",
    )
}

/// PIQA (`piqa/piqa.yaml`): "Question: {goal}\nAnswer:", choices " " + sol1, " " + sol2,
/// gold label.
fn piqa(id: String, record: &Value) -> Result<Item, FieldError> {
    let context = format!("Question: {}\nAnswer:", string(record, "goal")?);
    let continuations = spaced(vec![string(record, "sol1")?, string(record, "sol2")?]);
    shared(
        id,
        &context,
        continuations,
        index(record, "label")?,
        "label",
    )
}

/// Winogrande (`winogrande/preprocess_winogrande.py`, partial evaluation): each choice's
/// context is the sentence up to "_" with that option in the blank; the continuation,
/// shared, is " " + the rest after "_", stripped; gold answer - 1 ("1" or "2").
fn winogrande(id: String, record: &Value) -> Result<Item, FieldError> {
    let sentence = string(record, "sentence")?;
    let Some(blank) = sentence.find('_') else {
        return Err(FieldError::new("sentence", "has no '_' blank"));
    };
    let continuation = format!(" {}", sentence[blank + 1..].trim());
    let choices = [string(record, "option1")?, string(record, "option2")?]
        .map(|option| crate::Choice {
            context: format!("{}{option}", &sentence[..blank]),
            continuation: continuation.clone(),
        })
        .to_vec();
    let gold = match index(record, "answer")? {
        answer @ 1..=2 => answer - 1,
        answer => {
            return Err(FieldError::new(
                "answer",
                format!("expected 1 or 2, found {answer}"),
            ));
        }
    };
    Ok(Item { id, choices, gold })
}

/// SciQ (`sciq/sciq.yaml`): "{support.lstrip()}\nQuestion: {question}\nAnswer:", choices
/// " " + [distractor1, distractor2, distractor3, correct_answer], gold 3.
fn sciq(id: String, record: &Value) -> Result<Item, FieldError> {
    let context = format!(
        "{}\nQuestion: {}\nAnswer:",
        string(record, "support")?.trim_start(),
        string(record, "question")?
    );
    let fields = [
        "distractor1",
        "distractor2",
        "distractor3",
        "correct_answer",
    ];
    let continuations = spaced(
        fields
            .iter()
            .map(|f| string(record, f))
            .collect::<Result<_, _>>()?,
    );
    shared(id, &context, continuations, 3, "correct_answer")
}

/// BoolQ (`super_glue/boolq/default.yaml`): "{passage}\nQuestion: {question}?\nAnswer:",
/// choices " no", " yes", gold 1 when the answer is true. The answer is `label`
/// (super_glue: 0/1) or, failing that, `answer` (google/boolq: a boolean).
fn boolq(id: String, record: &Value) -> Result<Item, FieldError> {
    let context = format!(
        "{}\nQuestion: {}?\nAnswer:",
        string(record, "passage")?,
        string(record, "question")?
    );
    let field = if record.get("label").is_some() {
        "label"
    } else {
        "answer"
    };
    let gold = usize::from(boolean(record, field)?);
    shared(id, &context, vec![" no".into(), " yes".into()], gold, field)
}

/// COPA (`super_glue/copa/utils.py`): the premise, stripped, without its last character
/// (the full stop) + " because" (question "cause") or " therefore" ("effect");
/// choices " " + choice1/choice2 with the first letter lower-cased; gold label.
fn copa(id: String, record: &Value) -> Result<Item, FieldError> {
    let premise = string(record, "premise")?.trim();
    let connector = match string(record, "question")? {
        "cause" => "because",
        "effect" => "therefore",
        other => {
            let problem = format!("expected \"cause\" or \"effect\", found {other:?}");
            return Err(FieldError::new("question", problem));
        }
    };
    let without_stop = premise
        .char_indices()
        .last()
        .map_or("", |(last, _)| &premise[..last]);
    let context = format!("{without_stop} {connector}");
    let continuations = [string(record, "choice1")?, string(record, "choice2")?]
        .map(|choice| format!(" {}", lowercase_first(choice)))
        .to_vec();
    shared(
        id,
        &context,
        continuations,
        index(record, "label")?,
        "label",
    )
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// OpenBookQA (`openbookqa/openbookqa.yaml`): context question_stem, choices " " +
/// choices.text, gold = position of answerKey.lstrip() in choices.label.
fn openbookqa(id: String, record: &Value) -> Result<Item, FieldError> {
    let gold = labelled_gold(record, string(record, "answerKey")?.trim_start())?;
    let continuations = spaced(strings(record, "choices.text")?);
    shared(
        id,
        string(record, "question_stem")?,
        continuations,
        gold,
        "answerKey",
    )
}

/// LAMBADA (`lambada/lambada_openai.yaml`): context = text up to its last space,
/// continuation = " " + the last word; one choice, gold 0.
fn lambada(id: String, record: &Value) -> Result<Item, FieldError> {
    let text = string(record, "text")?;
    let Some(split) = text.rfind(' ') else {
        return Err(FieldError::new("text", "has no space before a last word"));
    };
    shared(
        id,
        &text[..split],
        vec![text[split..].to_owned()],
        0,
        "text",
    )
}

// ---- Building items -------------------------------------------------------------------

/// An item whose choices share `context`, after checking that `gold` (read from
/// `gold_field`) names one of them.
fn shared(
    id: String,
    context: &str,
    continuations: Vec<String>,
    gold: usize,
    gold_field: &str,
) -> Result<Item, FieldError> {
    if gold >= continuations.len() {
        let problem = format!(
            "gold index {gold} is out of range for {} choices",
            continuations.len()
        );
        return Err(FieldError::new(gold_field, problem));
    }
    Ok(Item::shared_context(id, context, &continuations, gold))
}

fn spaced(texts: Vec<&str>) -> Vec<String> {
    texts.into_iter().map(|text| format!(" {text}")).collect()
}

/// The position of `answer_key` among `choices.label` (ARC, OpenBookQA).
fn labelled_gold(record: &Value, answer_key: &str) -> Result<usize, FieldError> {
    let labels = strings(record, "choices.label")?;
    labels
        .iter()
        .position(|label| *label == answer_key)
        .ok_or_else(|| {
            let problem = format!("{answer_key:?} is not among choices.label {labels:?}");
            FieldError::new("answerKey", problem)
        })
}

// ---- Reading fields -------------------------------------------------------------------

/// The value at `path`, a field name or a dotted path into nested objects.
fn field<'a>(record: &'a Value, path: &str) -> Result<&'a Value, FieldError> {
    let mut value = record;
    for name in path.split('.') {
        value = value
            .as_object()
            .and_then(|object| object.get(name))
            .ok_or_else(|| FieldError::new(path, "missing"))?;
    }
    Ok(value)
}

pub(crate) fn string<'a>(record: &'a Value, path: &str) -> Result<&'a str, FieldError> {
    let value = field(record, path)?;
    value
        .as_str()
        .ok_or_else(|| expected(path, "a string", value))
}

fn strings<'a>(record: &'a Value, path: &str) -> Result<Vec<&'a str>, FieldError> {
    let value = field(record, path)?;
    let list = value
        .as_array()
        .ok_or_else(|| expected(path, "a list of strings", value))?;
    list.iter()
        .map(|item| {
            item.as_str()
                .ok_or_else(|| expected(path, "a list of strings", value))
        })
        .collect()
}

/// A non-negative integer, or a string holding one (HellaSwag's label "0".."3",
/// Winogrande's answer "1"/"2").
pub(crate) fn index(record: &Value, path: &str) -> Result<usize, FieldError> {
    let value = field(record, path)?;
    let parsed = match value {
        Value::Number(number) => number.as_u64().and_then(|n| usize::try_from(n).ok()),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| expected(path, "a non-negative integer", value))
}

/// A boolean, or the integer 0 or 1.
fn boolean(record: &Value, path: &str) -> Result<bool, FieldError> {
    let value = field(record, path)?;
    match value {
        Value::Bool(flag) => Ok(*flag),
        Value::Number(number) if number.as_u64() == Some(0) => Ok(false),
        Value::Number(number) if number.as_u64() == Some(1) => Ok(true),
        _ => Err(expected(path, "a boolean or 0/1", value)),
    }
}

pub(crate) fn expected(path: &str, what: &str, found: &Value) -> FieldError {
    let mut shown = found.to_string();
    if shown.len() > 60 {
        let cut = (0..=60)
            .rev()
            .find(|&at| shown.is_char_boundary(at))
            .unwrap_or(0);
        shown.truncate(cut);
        shown.push_str("...");
    }
    FieldError::new(path, format!("expected {what}, found {shown}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hellaswag_preprocess_matches_the_harness() {
        // Expected values worked by hand from lm-evaluation-harness hellaswag/utils.py.
        let cases = [
            ("  plain text ", "plain text"),
            ("Step one [title] Step two", "Step one. Step two"),
            ("keep [header] this", "keep this"),
            ("a [b] [c] d", "a  d"), // "a   d", then one pass of "  " -> " "
            ("open [ without close", "open [ without close"),
            ("no [cross\nline] here", "no [cross\nline] here"),
            ("three   spaces", "three  spaces"),
        ];
        for (input, output) in cases {
            assert_eq!(hellaswag_preprocess(input), output, "input {input:?}");
        }
    }

    #[test]
    fn capitalize_lowercases_the_rest_like_python() {
        assert_eq!(capitalize("then HE jumps"), "Then he jumps");
        assert_eq!(capitalize(""), "");
        assert_eq!(lowercase_first("The Man"), "the Man");
    }
}
