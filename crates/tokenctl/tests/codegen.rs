//! The committed shell completions and man page match the command-line definition.

#[test]
fn completions_and_man_page_are_fresh() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    kg_cli::codegen::check(&tokenctl::command(), &repo);
}
