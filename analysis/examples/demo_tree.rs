//! Write the tests' synthetic studies (known answers, see tests/common/mod.rs) under a
//! folder, to try `analyze` on: `cargo run -p analysis --example demo_tree -- /tmp/demo`
//! then `analyze /tmp/demo/study` (also `plain`: one size and one budget; `grid`: a
//! pb-grid-shaped study with per-window losses).

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    let Some(root) = std::env::args_os().nth(1) else {
        eprintln!("usage: demo_tree <folder>");
        std::process::exit(2);
    };
    let root = std::path::Path::new(&root);
    for results in [
        common::study_tree(root),
        common::tree_without_controls(root),
        common::grid_tree(root),
    ] {
        println!("{}", results.display());
    }
}
