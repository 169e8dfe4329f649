//! The function's zip: the static `bootstrap`, `up.json`, and the project's files minus
//! `.upignore` (gitignore syntax, in any folder) and dotfiles, executable bits kept.
//!
//! The zip is deterministic (entries sorted by path, fixed timestamps, modes from the files), so
//! unchanged inputs give the same bytes and the same `CodeSha256`, which is how a redeploy knows
//! the code did not change.

use base64::Engine;
use sha2::{Digest, Sha256};
use std::io::{Cursor, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use zip::write::SimpleFileOptions;

/// Lambda's limit on a function's unzipped size (250 MB, layers included).
pub const UNZIPPED_LIMIT: u64 = 262_144_000;

/// A packaged zip.
#[derive(Debug, Clone)]
pub struct Package {
    /// The zip's bytes.
    pub zip: Vec<u8>,
    /// Base64 SHA-256 of the zip: Lambda's `CodeSha256`.
    pub code_sha256: String,
    /// Hex SHA-256 of the zip (S3 keys).
    pub sha256_hex: String,
    /// Total size of the files, uncompressed.
    pub unzipped: u64,
    /// Number of files in the zip.
    pub files: usize,
}

/// Why the zip could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// A file could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// Walking the project failed (a bad `.upignore`, an unreadable folder, a loop).
    #[error("listing the project's files: {0}")]
    Walk(#[from] ignore::Error),
    /// Too big for Lambda.
    #[error(
        "the package is {} MB unzipped, over Lambda's 250 MB limit: add large files and folders to .upignore",
        unzipped / 1_000_000
    )]
    TooLarge {
        /// Total uncompressed size.
        unzipped: u64,
    },
    /// Writing the zip failed.
    #[error("writing the zip: {0}")]
    Zip(#[from] zip::result::ZipError),
}

/// One file to put in the zip.
#[derive(Debug)]
struct Entry {
    /// Path in the zip, `/`-separated.
    name: String,
    /// Where to read it.
    source: Source,
    /// Unix mode bits (`0o755`, `0o644`, ...).
    mode: u32,
    size: u64,
}

#[derive(Debug)]
enum Source {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// The app's zip: `bootstrap` from `bootstrap`, `up.json` (`up_json`), and the files of `dir`.
pub fn app(dir: &Path, bootstrap: &Path, up_json: Vec<u8>) -> Result<Package, PackageError> {
    let mut entries = project_files(dir)?;
    entries.push(file_entry("bootstrap".into(), bootstrap, Some(0o755))?);
    entries.push(Entry {
        name: up_config::FILE_NAME.into(),
        size: up_json.len() as u64,
        source: Source::Bytes(up_json),
        mode: 0o644,
    });
    write(entries)
}

/// A zip holding only `binary` as `bootstrap` (the warmer function).
pub fn single_binary(binary: &Path) -> Result<Package, PackageError> {
    write(vec![file_entry("bootstrap".into(), binary, Some(0o755))?])
}

fn file_entry(name: String, path: &Path, mode: Option<u32>) -> Result<Entry, PackageError> {
    let meta = std::fs::metadata(path).map_err(|source| PackageError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Entry {
        name,
        source: Source::File(path.to_path_buf()),
        mode: mode.unwrap_or(meta.permissions().mode() & 0o777),
        size: meta.len(),
    })
}

/// Every file of `dir` that goes in the zip, except `up.json` and `bootstrap` at the top, which
/// the package supplies itself.
fn project_files(dir: &Path) -> Result<Vec<Entry>, PackageError> {
    let walker = ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .hidden(true)
        .follow_links(true)
        .add_custom_ignore_filename(".upignore")
        .build();
    let mut entries = Vec::new();
    for item in walker {
        let item = item?;
        if !item.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Ok(relative) = item.path().strip_prefix(dir) else {
            continue;
        };
        let name = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if name == up_config::FILE_NAME || name == "bootstrap" {
            continue;
        }
        entries.push(file_entry(name, item.path(), None)?);
    }
    Ok(entries)
}

fn write(mut entries: Vec<Entry>) -> Result<Package, PackageError> {
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let unzipped: u64 = entries.iter().map(|e| e.size).sum();
    if unzipped > UNZIPPED_LIMIT {
        return Err(PackageError::TooLarge { unzipped });
    }
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for entry in &entries {
        let options = SimpleFileOptions::default()
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(entry.mode)
            .large_file(entry.size >= u64::from(u32::MAX));
        zip.start_file(entry.name.as_str(), options)?;
        match &entry.source {
            Source::Bytes(bytes) => zip.write_all(bytes),
            Source::File(path) => std::fs::File::open(path)
                .and_then(|mut file| std::io::copy(&mut file, &mut zip).map(drop)),
        }
        .map_err(|source| PackageError::Read {
            path: match &entry.source {
                Source::File(path) => path.clone(),
                Source::Bytes(_) => PathBuf::from(&entry.name),
            },
            source,
        })?;
    }
    let zip = zip.finish()?.into_inner();
    let digest = Sha256::digest(&zip);
    Ok(Package {
        code_sha256: base64::engine::general_purpose::STANDARD.encode(digest),
        sha256_hex: digest.iter().map(|b| format!("{b:02x}")).collect(),
        unzipped,
        files: entries.len(),
        zip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn listing(package: &Package) -> Vec<(String, u32)> {
        let mut archive = zip::ZipArchive::new(Cursor::new(package.zip.clone())).unwrap();
        (0..archive.len())
            .map(|i| {
                let file = archive.by_index(i).unwrap();
                (
                    file.name().unwrap().into_owned(),
                    file.unix_mode().unwrap() & 0o777,
                )
            })
            .collect()
    }

    fn project() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("app.py"), "print('hi')").unwrap();
        std::fs::write(p.join("run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(p.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(p.join(".env"), "SECRET=1").unwrap();
        std::fs::create_dir_all(p.join(".git")).unwrap();
        std::fs::write(p.join(".git/HEAD"), "ref").unwrap();
        std::fs::create_dir_all(p.join("node_modules/x")).unwrap();
        std::fs::write(p.join("node_modules/x/i.js"), "").unwrap();
        std::fs::create_dir_all(p.join("lib")).unwrap();
        std::fs::write(p.join("lib/a.txt"), "a").unwrap();
        std::fs::write(p.join("lib/b.log"), "b").unwrap();
        std::fs::write(p.join("lib/keep.log"), "k").unwrap();
        std::fs::write(p.join(".upignore"), "node_modules/\n*.log\n!keep.log\n").unwrap();
        std::fs::write(p.join("up.json"), "{\"name\":\"old\"}").unwrap();
        std::fs::write(p.join("bootstrap"), "stale").unwrap();
        dir
    }

    #[test]
    fn zip_holds_bootstrap_config_and_files_minus_ignored_and_dotfiles() {
        let dir = project();
        let boot = dir.path().join("lib/a.txt");
        let package = app(dir.path(), &boot, b"{\"name\":\"demo\"}".to_vec()).unwrap();
        assert_eq!(
            listing(&package),
            vec![
                ("app.py".to_owned(), 0o644),
                ("bootstrap".to_owned(), 0o755),
                ("lib/a.txt".to_owned(), 0o644),
                ("lib/keep.log".to_owned(), 0o644),
                ("run.sh".to_owned(), 0o755),
                ("up.json".to_owned(), 0o644),
            ]
        );
        let mut archive = zip::ZipArchive::new(Cursor::new(package.zip.clone())).unwrap();
        let mut text = String::new();
        archive
            .by_name("up.json")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "{\"name\":\"demo\"}");
        assert_eq!(package.files, 6);
    }

    #[test]
    fn same_inputs_give_the_same_bytes() {
        let dir = project();
        let boot = dir.path().join("lib/a.txt");
        let one = app(dir.path(), &boot, b"{}".to_vec()).unwrap();
        let two = app(dir.path(), &boot, b"{}".to_vec()).unwrap();
        assert_eq!(one.code_sha256, two.code_sha256);
        std::fs::write(dir.path().join("app.py"), "print('changed')").unwrap();
        let three = app(dir.path(), &boot, b"{}".to_vec()).unwrap();
        assert_ne!(one.code_sha256, three.code_sha256);
    }

    #[test]
    fn over_the_unzipped_limit_is_refused_before_compressing() {
        let dir = tempfile::tempdir().unwrap();
        let big = std::fs::File::create(dir.path().join("big.bin")).unwrap();
        big.set_len(UNZIPPED_LIMIT + 1).unwrap();
        let boot = dir.path().join("big.bin");
        let err = single_binary(&boot).unwrap_err();
        assert!(matches!(err, PackageError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("250 MB"), "{err}");
    }
}
