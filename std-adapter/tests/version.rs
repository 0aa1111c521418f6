//! The `tenure` binary says which core it was built with: `--version` and `version`
//! print the version and `fault hooks: none` (the test-only fault hooks exist only in
//! the simulator's `tenure-fault` build of the core, which this binary must never link).

use std::process::Command;

fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(args)
        .output()
        .expect("run the tenure binary");
    assert!(out.status.success(), "tenure {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn version_says_the_core_has_no_fault_hooks() {
    for args in [&["--version"][..], &["version"], &["-V"]] {
        let text = run(args);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some(concat!("tenure ", env!("CARGO_PKG_VERSION"))),
            "{args:?}: {text}"
        );
        assert_eq!(lines.next(), Some("fault hooks: none"), "{args:?}: {text}");
        assert_eq!(lines.next(), None, "{args:?}: {text}");
    }
}
