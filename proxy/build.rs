//! Links the static `bootstrap` with its hot code first.
//!
//! `hot-functions.txt` lists the functions that run when the bootstrap starts and serves a
//! request (written by `scripts/hot-functions` from a callgrind run of the benchmark). For
//! release builds for musl (the Lambda binary), a linker script places them together at the
//! start of `.text`, before everything else. The kernel maps a binary's code in blocks of
//! 64 KiB or more around each page touched, so code that runs, spread among code that never
//! does (compression, JWT, error pages, ...), maps nearly the whole binary: grouped, the
//! bootstrap's resident code is about the size of what it runs (issue 2's RSS target).
//!
//! The list names the exact input sections that ran (their names carry the build's symbol
//! hashes), then the same functions without their hash (`…17h*`): exact names place only the
//! code that ran, and while dependencies, flags and toolchain stay the same so do the hashes;
//! the hash-free names still find that code when they change (with every other instance of
//! a generic function). A function the list misses is only placed with the rest. Set
//! `UP_HOT_FUNCTIONS=off` to link without it; `UP_LINK_MAP=<file>` writes the link map
//! (`scripts/hot-functions` reads it).

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=hot-functions.txt");
    println!("cargo:rerun-if-env-changed=UP_HOT_FUNCTIONS");
    println!("cargo:rerun-if-env-changed=UP_LINK_MAP");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let wanted = var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "musl"
        && var("PROFILE") == "release"
        && var("UP_HOT_FUNCTIONS") != "off";
    if !wanted {
        return;
    }
    let manifest = PathBuf::from(var("CARGO_MANIFEST_DIR"));
    let Ok(list) = std::fs::read_to_string(manifest.join("hot-functions.txt")) else {
        println!("cargo:warning=proxy/hot-functions.txt is missing: bootstrap linked without it");
        return;
    };
    let mut script = String::from("SECTIONS\n{\n  .text.hot :\n  {\n");
    for line in list.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let _ = if let Some(member) = line.strip_prefix("libc:") {
            // A musl object (one function each, in a plain `.text`).
            writeln!(script, "    *libc.a:{member}(.text .text.*)")
        } else if line.starts_with(".text") {
            // An exact input section, hash included.
            writeln!(script, "    *({line})")
        } else {
            // A function name (`*` for its hash). LLVM puts functions it deems cold
            // (`#[cold]`, such as `RawVec::grow_one`, which runs all the time) in
            // `.text.unlikely.*`.
            writeln!(script, "    *(.text.{line} .text.unlikely.{line})")
        };
    }
    script.push_str("  }\n}\nINSERT BEFORE .text;\n");
    let out = PathBuf::from(var("OUT_DIR")).join("hot.ld");
    if let Err(e) = std::fs::write(&out, script) {
        println!("cargo:warning=cannot write {}: {e}", out.display());
        return;
    }
    println!(
        "cargo:rustc-link-arg-bin=bootstrap=-Wl,-T,{}",
        out.display()
    );
    if let Ok(map) = std::env::var("UP_LINK_MAP") {
        println!("cargo:rustc-link-arg-bin=bootstrap=-Wl,-Map,{map}");
    }
}
