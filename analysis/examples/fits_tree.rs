//! Write the fits' synthetic sweep (known answers: tests/support/fits_tree.rs) and
//! analyse it, keeping the report and figures to look at:
//! `cargo run -p analysis --example fits_tree -- /tmp/fits-check`.

#[path = "../tests/support/fits_tree.rs"]
mod fits_tree;

fn main() {
    let Some(root) = std::env::args_os().nth(1) else {
        eprintln!("usage: fits_tree <folder>");
        std::process::exit(2);
    };
    let results = fits_tree::fits_tree(std::path::Path::new(&root));
    match analysis::analyze(&results, &analysis::AnalyzeOptions::default()) {
        Ok(summary) => println!("{summary}"),
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(1);
        }
    }
}
