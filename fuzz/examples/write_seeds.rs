//! Regenerates the committed seed corpus under `fuzz/corpus/`.

fn main() -> std::io::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    tollgate_fuzz::write_seed_corpus(&root)
}
