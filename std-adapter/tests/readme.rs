//! The README's service snippet is `examples/service.rs`, which `cargo test` compiles: the
//! two cannot drift apart.

use std::path::Path;

/// The first ```rust block after `heading` in `text`.
fn rust_block_after<'a>(text: &'a str, heading: &str) -> Option<&'a str> {
    let section = &text[text.find(heading)?..];
    let start = section.find("```rust\n")? + "```rust\n".len();
    let len = section[start..].find("```\n")?;
    Some(&section[start..start + len])
}

#[test]
fn the_readme_service_snippet_is_the_compiled_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("../README.md")).unwrap();
    let example = std::fs::read_to_string(root.join("examples/service.rs")).unwrap();
    let snippet = rust_block_after(&readme, "## In a tokio service")
        .expect("README.md has a ```rust block under \"## In a tokio service\"");
    assert_eq!(
        snippet, example,
        "the README's service snippet differs from std-adapter/examples/service.rs: copy the \
         file into the README"
    );
}

#[test]
fn the_snippet_extractor_finds_the_block_and_only_it() {
    let text = "# A\n```rust\nfn a() {}\n```\n## B\ntext\n```rust\nfn b() {}\n```\n";
    assert_eq!(rust_block_after(text, "## B"), Some("fn b() {}\n"));
    assert_eq!(rust_block_after(text, "## C"), None);
}
