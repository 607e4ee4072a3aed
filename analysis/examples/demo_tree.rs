//! Write the tests' synthetic study (known answers, see tests/common/mod.rs) under a
//! folder, to try `analyze` on: `cargo run -p analysis --example demo_tree -- /tmp/demo`
//! then `analyze /tmp/demo/study`.

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    let Some(root) = std::env::args_os().nth(1) else {
        eprintln!("usage: demo_tree <folder>");
        std::process::exit(2);
    };
    let results = common::study_tree(std::path::Path::new(&root));
    println!("{}", results.display());
}
