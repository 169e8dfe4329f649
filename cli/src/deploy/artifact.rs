//! Finding (or building) the static Linux binaries a deploy ships: the `bootstrap` (crate
//! up-proxy, every app's Lambda runtime) and the `warmer` (crate up-warmer, the warmer function).
//!
//! For each, in order:
//! 1. `$UP_BOOTSTRAP` / `$UP_WARMER` (an explicit file; an error if it is not a fitting binary);
//! 2. a file next to the `up` executable: `bootstrap` / `warmer` for x86_64,
//!    `bootstrap-arm64` / `warmer-arm64` for arm64;
//! 3. the musl release build in a cargo target directory of the source tree `up` was built
//!    from: `$CARGO_TARGET_DIR`, the target directory `up` itself sits in, and
//!    `<source>/target`, each under `<triple>/release/<bin>`;
//! 4. when that source tree exists: `cargo build --release -p <crate> --target <triple>` in it,
//!    then step 3 again;
//! 5. else an error saying how to get one.
//!
//! A candidate counts only when it is a static ELF executable for the function's architecture
//! (a glibc build next to `up`, such as cargo's host `bootstrap`, is passed over).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use up_config::Architecture;

/// Which binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    /// The Lambda runtime that runs the app (crate up-proxy).
    Bootstrap,
    /// The warmer function (crate up-warmer).
    Warmer,
}

impl Binary {
    fn file_name(self) -> &'static str {
        match self {
            Self::Bootstrap => "bootstrap",
            Self::Warmer => "warmer",
        }
    }

    fn env_var(self) -> &'static str {
        match self {
            Self::Bootstrap => "UP_BOOTSTRAP",
            Self::Warmer => "UP_WARMER",
        }
    }

    fn package(self) -> &'static str {
        match self {
            Self::Bootstrap => "up-proxy",
            Self::Warmer => "up-warmer",
        }
    }

    fn beside_up(self, arch: Architecture) -> String {
        match arch {
            Architecture::X86_64 => self.file_name().to_owned(),
            Architecture::Arm64 => format!("{}-arm64", self.file_name()),
        }
    }
}

/// The Rust target triple of a Lambda architecture.
pub fn triple(arch: Architecture) -> &'static str {
    match arch {
        Architecture::X86_64 => "x86_64-unknown-linux-musl",
        Architecture::Arm64 => "aarch64-unknown-linux-musl",
    }
}

fn linker_hint(arch: Architecture) -> &'static str {
    match arch {
        Architecture::X86_64 => "",
        Architecture::Arm64 => " and a linker for it (e.g. cargo-zigbuild or an aarch64 musl gcc)",
    }
}

fn arch_name(arch: Architecture) -> &'static str {
    match arch {
        Architecture::X86_64 => "x86_64",
        Architecture::Arm64 => "arm64",
    }
}

/// Why no binary could be found.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The explicit variable names an unusable file.
    #[error("{var}={}: {problem}", path.display())]
    BadExplicit {
        /// `UP_BOOTSTRAP` or `UP_WARMER`.
        var: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The build in the source tree failed.
    #[error(
        "building the {} {} failed ({status}): `cargo build --release -p {} --target {}` in {}; \
         it needs `rustup target add {}`{}, or set {}",
        arch_name(*.arch),
        .bin.file_name(),
        .bin.package(),
        triple(*.arch),
        .source_dir.display(),
        triple(*.arch),
        linker_hint(*.arch),
        .bin.env_var()
    )]
    BuildFailed {
        /// Which binary.
        bin: Binary,
        /// For which architecture.
        arch: Architecture,
        /// The source tree.
        source_dir: PathBuf,
        /// How cargo ended.
        status: String,
    },
    /// Nothing found and no source tree to build in.
    #[error(
        "no static {arch} {bin} found: set {var}=<file>, or put `{beside}` next to the up executable \
         (build it with `cargo build --release -p {package} --target {triple}` in up's source tree)"
    )]
    NotFound {
        /// Binary name.
        bin: &'static str,
        /// Architecture name.
        arch: &'static str,
        /// `UP_BOOTSTRAP` or `UP_WARMER`.
        var: &'static str,
        /// File name next to `up`.
        beside: String,
        /// The crate.
        package: &'static str,
        /// The target triple.
        triple: &'static str,
    },
}

/// Where to look: the environment, `up`'s own path and the source tree it was built from.
#[derive(Debug, Clone)]
pub struct Search {
    /// `$UP_BOOTSTRAP`.
    pub up_bootstrap: Option<PathBuf>,
    /// `$UP_WARMER`.
    pub up_warmer: Option<PathBuf>,
    /// `$CARGO_TARGET_DIR`.
    pub cargo_target_dir: Option<PathBuf>,
    /// The running `up` executable.
    pub exe: Option<PathBuf>,
    /// The workspace `up` was built from (when it still exists).
    pub source: Option<PathBuf>,
}

impl Search {
    /// From the process environment: the one place this module reads it.
    pub fn from_env() -> Self {
        let var =
            |name: &str| -> Option<OsString> { std::env::var_os(name).filter(|v| !v.is_empty()) };
        // `cli/` is this crate's directory; its parent is the workspace root.
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
            .filter(|root| root.join("proxy").join("Cargo.toml").is_file());
        let source_root = source.clone().unwrap_or_default();
        let cargo_target_dir = var("CARGO_TARGET_DIR").map(|d| source_root.join(d));
        Self {
            up_bootstrap: var("UP_BOOTSTRAP").map(PathBuf::from),
            up_warmer: var("UP_WARMER").map(PathBuf::from),
            cargo_target_dir,
            exe: std::env::current_exe().ok(),
            source,
        }
    }

    fn explicit(&self, bin: Binary) -> Option<&Path> {
        match bin {
            Binary::Bootstrap => self.up_bootstrap.as_deref(),
            Binary::Warmer => self.up_warmer.as_deref(),
        }
    }

    /// Target directories to look in, in order, without duplicates.
    fn target_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Some(dir) = &self.cargo_target_dir {
            dirs.push(dir.clone());
        }
        // <target>/<profile>/up or <target>/<triple>/<profile>/up: walk up to the directory
        // holding CACHEDIR.TAG (cargo writes it at the target root).
        if let Some(exe) = &self.exe {
            for dir in exe.ancestors().skip(1).take(3) {
                if dir.join("CACHEDIR.TAG").is_file() {
                    dirs.push(dir.to_path_buf());
                    break;
                }
            }
        }
        if let Some(source) = &self.source {
            dirs.push(source.join("target"));
        }
        let mut unique = Vec::new();
        for dir in dirs {
            if !unique.contains(&dir) {
                unique.push(dir);
            }
        }
        unique
    }

    /// The candidates of steps 2 and 3, in order.
    pub fn candidates(&self, bin: Binary, arch: Architecture) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Some(dir) = self.exe.as_deref().and_then(Path::parent) {
            out.push(dir.join(bin.beside_up(arch)));
        }
        for dir in self.target_dirs() {
            out.push(dir.join(triple(arch)).join("release").join(bin.file_name()));
        }
        out
    }
}

/// The binary `bin` for `arch`, found or built as the module documentation says. `on_build` is
/// told before a (slow) cargo build starts.
pub fn find(
    search: &Search,
    bin: Binary,
    arch: Architecture,
    on_build: &dyn Fn(&str),
) -> Result<PathBuf, ArtifactError> {
    if let Some(path) = search.explicit(bin) {
        return match check(path, arch) {
            Ok(()) => Ok(path.to_path_buf()),
            Err(problem) => Err(ArtifactError::BadExplicit {
                var: bin.env_var(),
                path: path.to_path_buf(),
                problem,
            }),
        };
    }
    if let Some(found) = first_fit(search, bin, arch) {
        return Ok(found);
    }
    let Some(source) = &search.source else {
        return Err(not_found(bin, arch));
    };
    on_build(&format!(
        "building the {} {} (cargo build --release -p {} --target {})",
        arch_name(arch),
        bin.file_name(),
        bin.package(),
        triple(arch)
    ));
    let mut command = std::process::Command::new(cargo());
    command
        .args(["build", "--release", "-p", bin.package(), "--target"])
        .arg(triple(arch))
        .current_dir(source)
        // Cargo's progress goes to our stderr; stdout stays for results.
        .stdout(std::io::stderr());
    if let Some(dir) = &search.cargo_target_dir {
        command.env("CARGO_TARGET_DIR", dir);
    }
    let status = command.status();
    let failed = |status: String| ArtifactError::BuildFailed {
        bin,
        arch,
        source_dir: source.clone(),
        status,
    };
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => return Err(failed(status.to_string())),
        Err(e) => return Err(failed(format!("cannot run cargo: {e}"))),
    }
    first_fit(search, bin, arch).ok_or_else(|| not_found(bin, arch))
}

fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"))
}

fn first_fit(search: &Search, bin: Binary, arch: Architecture) -> Option<PathBuf> {
    search
        .candidates(bin, arch)
        .into_iter()
        .find(|path| check(path, arch).is_ok())
}

fn not_found(bin: Binary, arch: Architecture) -> ArtifactError {
    ArtifactError::NotFound {
        bin: bin.file_name(),
        arch: arch_name(arch),
        var: bin.env_var(),
        beside: bin.beside_up(arch),
        package: bin.package(),
        triple: triple(arch),
    }
}

/// `Ok` when `path` is a static ELF executable for `arch`.
pub fn check(path: &Path, arch: Architecture) -> Result<(), String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    // The ELF header and the program headers of a small static binary fit in 64 KiB; a
    // larger table is read on demand below.
    let mut head = Vec::new();
    file.by_ref()
        .take(64 * 1024)
        .read_to_end(&mut head)
        .map_err(|e| e.to_string())?;
    let elf = Elf::parse(&head).ok_or("not an ELF executable")?;
    let want = match arch {
        Architecture::X86_64 => 62,
        Architecture::Arm64 => 183,
    };
    if elf.machine != want {
        return Err(format!(
            "built for another CPU (ELF machine {}), not {}",
            elf.machine,
            arch_name(arch)
        ));
    }
    if elf.interpreter {
        return Err(
            "dynamically linked (it needs a static musl build: --target x86_64-unknown-linux-musl)"
                .to_owned(),
        );
    }
    Ok(())
}

/// The two facts about an ELF file that matter here.
#[derive(Debug, PartialEq, Eq)]
struct Elf {
    machine: u16,
    /// A `PT_INTERP` program header: the file needs a dynamic loader.
    interpreter: bool,
}

impl Elf {
    /// Parses a 64-bit little-endian ELF header and its program headers from `bytes`.
    fn parse(bytes: &[u8]) -> Option<Self> {
        const PT_INTERP: u32 = 3;
        if bytes.get(..4)? != b"\x7fELF" || *bytes.get(4)? != 2 || *bytes.get(5)? != 1 {
            return None;
        }
        let u16_at = |at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
        let u32_at = |at: usize| Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
        let u64_at = |at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
        let kind = u16_at(16)?;
        // ET_EXEC or ET_DYN (static-pie).
        if kind != 2 && kind != 3 {
            return None;
        }
        let machine = u16_at(18)?;
        let phoff = usize::try_from(u64_at(32)?).ok()?;
        let phentsize = usize::from(u16_at(54)?);
        let phnum = usize::from(u16_at(56)?);
        let mut interpreter = false;
        for i in 0..phnum {
            let at = phoff.checked_add(i.checked_mul(phentsize)?)?;
            if u32_at(at)? == PT_INTERP {
                interpreter = true;
            }
        }
        Some(Self {
            machine,
            interpreter,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(machine: u16, interp: bool) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 2 * 56];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[16..18].copy_from_slice(&2u16.to_le_bytes());
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&2u16.to_le_bytes());
        b[64..68].copy_from_slice(&1u32.to_le_bytes());
        let second = if interp { 3u32 } else { 1 };
        b[120..124].copy_from_slice(&second.to_le_bytes());
        b
    }

    #[test]
    fn elf_header_tells_machine_and_static() {
        assert_eq!(
            Elf::parse(&elf(62, false)),
            Some(Elf {
                machine: 62,
                interpreter: false
            })
        );
        assert!(Elf::parse(&elf(183, true)).unwrap().interpreter);
        assert_eq!(Elf::parse(b"#!/bin/sh\n"), None);
    }

    #[test]
    fn check_refuses_dynamic_and_foreign_binaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bootstrap");
        std::fs::write(&path, elf(62, true)).unwrap();
        assert!(
            check(&path, Architecture::X86_64)
                .unwrap_err()
                .contains("dynamically")
        );
        std::fs::write(&path, elf(183, false)).unwrap();
        assert!(
            check(&path, Architecture::X86_64)
                .unwrap_err()
                .contains("another CPU")
        );
        assert!(check(&path, Architecture::Arm64).is_ok());
    }

    #[test]
    fn candidates_follow_the_documented_order() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::create_dir_all(target.join("debug")).unwrap();
        std::fs::write(target.join("CACHEDIR.TAG"), "").unwrap();
        let search = Search {
            up_bootstrap: None,
            up_warmer: None,
            cargo_target_dir: Some(PathBuf::from("/ct")),
            exe: Some(target.join("debug").join("up")),
            source: Some(PathBuf::from("/src")),
        };
        assert_eq!(
            search.candidates(Binary::Bootstrap, Architecture::X86_64),
            vec![
                target.join("debug/bootstrap"),
                PathBuf::from("/ct/x86_64-unknown-linux-musl/release/bootstrap"),
                target.join("x86_64-unknown-linux-musl/release/bootstrap"),
                PathBuf::from("/src/target/x86_64-unknown-linux-musl/release/bootstrap"),
            ]
        );
        assert_eq!(
            search.candidates(Binary::Warmer, Architecture::Arm64)[0],
            target.join("debug/warmer-arm64")
        );
    }

    #[test]
    fn explicit_file_must_fit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bootstrap");
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        let search = Search {
            up_bootstrap: Some(path),
            up_warmer: None,
            cargo_target_dir: None,
            exe: None,
            source: None,
        };
        let err = find(&search, Binary::Bootstrap, Architecture::X86_64, &|_| {}).unwrap_err();
        assert!(err.to_string().starts_with("UP_BOOTSTRAP="), "{err}");
        let none = Search {
            up_bootstrap: None,
            ..search
        };
        let err = find(&none, Binary::Bootstrap, Architecture::X86_64, &|_| {}).unwrap_err();
        assert!(matches!(err, ArtifactError::NotFound { .. }), "{err}");
    }
}
