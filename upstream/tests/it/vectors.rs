//! The committed cross-implementation vectors are exactly what the generator (and so the Rust
//! verifier) produces today: the JavaScript library's tests read that file, so the two
//! implementations cannot drift apart unnoticed.

#[allow(dead_code)]
#[path = "../../examples/vectors.rs"]
mod generator;

#[test]
fn committed_vectors_match_the_generator() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(generator::FILE);
    let committed = std::fs::read_to_string(&path).expect("upstream/tests/vectors.json");
    assert!(
        committed == generator::generate(),
        "upstream/tests/vectors.json is stale: run `cargo run -p tollgate-upstream --example vectors`"
    );
}
