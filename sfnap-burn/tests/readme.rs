//! The top-level README shows sfnap-burn's usage; its block must be this
//! crate's README example, which the doctests compile and run.

fn rust_block(text: &str, fence: &str) -> String {
    let start = text.find(fence).unwrap_or_else(|| panic!("no {fence} block")) + fence.len();
    let end = start + text[start..].find("```").expect("the block ends");
    text[start..end].to_string()
}

#[test]
fn the_top_level_readme_shows_the_compiled_example() {
    let here = env!("CARGO_MANIFEST_DIR");
    let own = std::fs::read_to_string(format!("{here}/README.md")).unwrap();
    let top = std::fs::read_to_string(format!("{here}/../README.md")).unwrap();
    let burn = &top[top
        .find("### From Burn")
        .expect("README.md has a `### From Burn` section")..];
    assert_eq!(
        rust_block(burn, "```rust,ignore\n"),
        rust_block(&own, "```rust\n"),
        "README.md's Burn block differs from sfnap-burn/README.md's compiled one: copy it over"
    );
}
