//! Extraction under attack: random sequences of tar members (files, directories, symbolic
//! and hard links with relative and absolute targets, `..`, duplicates, long and non-UTF-8
//! names, devices) are restored into staging beside a directory of the test's own; nothing
//! outside staging may be created, changed or read, whatever the archive holds.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::extract_backup;

const SECRET: &[u8] = b"the outside secret, never to be read into staging";

#[derive(Debug, Clone)]
enum Kind {
    File(usize),
    Dir,
    Symlink(Target),
    HardLink(Target),
    Fifo,
}

#[derive(Debug, Clone)]
enum Target {
    /// The test's outside directory or a file in it, by absolute path.
    OutsideAbsolute(bool),
    /// Climbing out with `..`.
    Climb(usize, &'static str),
    /// A name of the archive's own (perhaps a link made earlier).
    Member(Vec<Vec<u8>>),
    Root,
}

#[derive(Debug, Clone)]
struct Entry {
    name: Name,
    kind: Kind,
    mode: u32,
}

#[derive(Debug, Clone)]
enum Name {
    Relative(&'static str, Vec<Vec<u8>>),
    /// An absolute name inside the outside directory.
    OutsideAbsolute(Vec<u8>),
}

fn component() -> impl Strategy<Value = Vec<u8>> {
    // Few names, so that members often land on or under each other.
    prop_oneof![
        6 => Just(b"link".to_vec()),
        2 => Just(b"a".to_vec()),
        1 => Just(b"..".to_vec()),
        1 => Just(b".".to_vec()),
        1 => Just(b"\xff\xfe-not-utf8".to_vec()),
        1 => Just(vec![b'l'; 200]),
    ]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        3 => any::<bool>().prop_map(Target::OutsideAbsolute),
        3 => (1usize..4, prop_oneof![Just("outside"), Just("outside/secret"), Just("")])
            .prop_map(|(n, rest)| Target::Climb(n, rest)),
        2 => prop::collection::vec(component(), 1..4).prop_map(Target::Member),
        1 => Just(Target::Root),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    let prefix = prop_oneof![
        12 => Just("files"),
        2 => Just("private"),
        1 => Just("database.innodb"),
        1 => Just(""),
        1 => Just(".."),
        1 => Just("database.sql"),
        1 => Just("database.sqlite"),
    ];
    let name = prop_oneof![
        4 => (prefix, prop::collection::vec(component(), 1..3))
            .prop_map(|(p, c)| Name::Relative(p, c)),
        1 => component().prop_map(Name::OutsideAbsolute),
    ];
    let kind = prop_oneof![
        4 => prop_oneof![Just(0usize), Just(10), Just(300 << 10)].prop_map(Kind::File),
        3 => Just(Kind::Dir),
        4 => target().prop_map(Kind::Symlink),
        1 => target().prop_map(Kind::HardLink),
        1 => Just(Kind::Fifo),
    ];
    let mode = prop_oneof![Just(0o644u32), Just(0o7777), Just(0o4755), Just(0o000)];
    (name, kind, mode).prop_map(|(name, kind, mode)| Entry { name, kind, mode })
}

fn join(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.join(&b'/')
}

fn name_bytes(name: &Name, outside: &Path) -> Vec<u8> {
    match name {
        Name::Relative(prefix, parts) => {
            let mut all = Vec::new();
            if !prefix.is_empty() {
                all.push(prefix.as_bytes().to_vec());
            }
            all.extend(parts.iter().cloned());
            join(&all)
        }
        Name::OutsideAbsolute(last) => {
            let mut bytes = outside.as_os_str().as_bytes().to_vec();
            bytes.push(b'/');
            bytes.extend(last);
            bytes
        }
    }
}

fn target_bytes(target: &Target, outside: &Path) -> Vec<u8> {
    match target {
        Target::OutsideAbsolute(file) => {
            let path = if *file {
                outside.join("secret")
            } else {
                outside.to_path_buf()
            };
            path.as_os_str().as_bytes().to_vec()
        }
        Target::Climb(n, rest) => {
            let mut bytes = b"../".repeat(*n);
            bytes.extend(rest.as_bytes());
            bytes
        }
        Target::Member(parts) => join(parts),
        Target::Root => b"/".to_vec(),
    }
}

/// Appends a raw header (and a GNU long-name entry before it when the name or target does
/// not fit), as a hostile tool would write it: no checks on names.
fn append_raw(
    out: &mut Vec<u8>,
    name: &[u8],
    kind: tar::EntryType,
    link: Option<&[u8]>,
    mode: u32,
    data: &[u8],
) {
    let long = |bytes: &[u8], long_kind: tar::EntryType, out: &mut Vec<u8>| {
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
        header.set_entry_type(long_kind);
        header.set_size(bytes.len() as u64 + 1);
        header.set_mode(0o644);
        header.set_cksum();
        out.extend(header.as_bytes());
        let mut body = bytes.to_vec();
        body.push(0);
        body.resize(body.len().div_ceil(512) * 512, 0);
        out.extend(body);
    };
    let mut header = tar::Header::new_gnu();
    if name.len() > 100 {
        long(name, tar::EntryType::GNULongName, out);
    }
    let short = &name[..name.len().min(100)];
    header.as_gnu_mut().unwrap().name[..short.len()].copy_from_slice(short);
    if let Some(link) = link {
        if link.len() > 100 {
            long(link, tar::EntryType::GNULongLink, out);
        }
        let short = &link[..link.len().min(100)];
        header.as_gnu_mut().unwrap().linkname[..short.len()].copy_from_slice(short);
    }
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_cksum();
    out.extend(header.as_bytes());
    let mut body = data.to_vec();
    body.resize(body.len().div_ceil(512) * 512, 0);
    out.extend(body);
}

fn build_archive(entries: &[Entry], outside: &Path) -> Vec<u8> {
    let mut tar = Vec::new();
    for e in entries {
        let name = name_bytes(&e.name, outside);
        match &e.kind {
            Kind::File(size) => {
                let data = vec![b'x'; *size];
                append_raw(
                    &mut tar,
                    &name,
                    tar::EntryType::Regular,
                    None,
                    e.mode,
                    &data,
                );
            }
            Kind::Dir => append_raw(
                &mut tar,
                &name,
                tar::EntryType::Directory,
                None,
                e.mode,
                &[],
            ),
            Kind::Symlink(t) => {
                let t = target_bytes(t, outside);
                append_raw(
                    &mut tar,
                    &name,
                    tar::EntryType::Symlink,
                    Some(&t),
                    e.mode,
                    &[],
                );
            }
            Kind::HardLink(t) => {
                let t = target_bytes(t, outside);
                append_raw(&mut tar, &name, tar::EntryType::Link, Some(&t), e.mode, &[]);
            }
            Kind::Fifo => append_raw(&mut tar, &name, tar::EntryType::Fifo, None, e.mode, &[]),
        }
    }
    tar.extend([0u8; 1024]);
    zstd::encode_all(tar.as_slice(), 1).unwrap()
}

/// Everything under `dir` but `skip`: path → (type, mode, owner, content or link target).
fn snapshot(dir: &Path, skip: &[&Path]) -> BTreeMap<PathBuf, (String, u32, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if skip.contains(&path.as_path()) {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let (kind, content) = if meta.file_type().is_symlink() {
            (
                "link",
                std::fs::read_link(&path)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
            )
        } else if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
            ("dir", Vec::new())
        } else {
            ("file", std::fs::read(&path).unwrap())
        };
        out.insert(path, (kind.to_string(), meta.mode(), meta.uid(), content));
    }
    out
}

fn nothing_read_into(dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if meta.is_file() {
            assert_ne!(
                std::fs::read(&path).unwrap(),
                SECRET,
                "{} holds the secret",
                path.display()
            );
            assert_eq!(
                meta.mode() & 0o7022,
                0,
                "{} keeps a special or shared-write bit",
                path.display()
            );
        } else if !meta.file_type().is_symlink() {
            panic!("{} is neither file, directory nor link", path.display());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn nothing_outside_staging_is_created_changed_or_read(
        entries in prop::collection::vec(entry(), 1..12)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), SECRET).unwrap();
        let stage = dir.path().join("stage");
        let scratch = stage.join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        let archive = dir.path().join("attack.tar.zst");
        std::fs::write(&archive, build_archive(&entries, &outside)).unwrap();
        let before = snapshot(dir.path(), &[&stage]);
        let (files, private) = (stage.join("files"), stage.join("private"));
        let result = extract_backup(&archive, &files, &private, &scratch.join("db.dump"));
        // No archive here has a manifest: every one must be refused in the end.
        prop_assert!(result.is_err());
        prop_assert_eq!(before, snapshot(dir.path(), &[&stage]));
        nothing_read_into(&stage);
    }
}

fn expect_refused(archive: &[u8], why: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.tar.zst");
    std::fs::write(&path, archive).unwrap();
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let error = extract_backup(
        &path,
        &dir.path().join("files"),
        &dir.path().join("private"),
        &scratch.join("db"),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains(why), "{error}");
}

/// A member that claims gigabytes, compressed to kilobytes, is never read whole: the
/// manifest and long names are read up to a bound, then refused.
#[test]
fn huge_manifests_and_names_are_refused_unread() {
    let huge = 3u64 << 30;
    let mut header = tar::Header::new_gnu();
    header.set_path(super::MANIFEST).unwrap();
    header.set_size(huge);
    header.set_mode(0o644);
    header.set_cksum();
    let mut encoder = zstd::Encoder::new(Vec::new(), 1).unwrap();
    std::io::Write::write_all(&mut encoder, header.as_bytes()).unwrap();
    std::io::copy(&mut std::io::repeat(b' ').take(huge), &mut encoder).unwrap();
    let archive = encoder.finish().unwrap();
    assert!(archive.len() < 1 << 20);
    expect_refused(&archive, "its manifest is larger than");

    let mut tar = Vec::new();
    append_raw(
        &mut tar,
        &vec![b'n'; 1 << 20],
        tar::EntryType::Regular,
        None,
        0o644,
        b"x",
    );
    expect_refused(
        &zstd::encode_all(tar.as_slice(), 1).unwrap(),
        "a long name is larger than",
    );
}

/// A restore of a FIFO (or a device) is refused before anything is read from it.
#[test]
fn only_regular_files_are_read_as_archives() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let error = extract_backup(
        &fifo,
        &dir.path().join("files"),
        &dir.path().join("private"),
        &scratch.join("db"),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("not a regular file"), "{error}");
}

use std::io::Read;

/// The attack seen: a link member, then a member written through it.
#[test]
fn a_member_written_through_a_link_of_the_archive_stays_out_of_the_link() {
    for target in [Target::OutsideAbsolute(false), Target::Climb(2, "outside")] {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let stage = dir.path().join("stage");
        std::fs::create_dir(&stage).unwrap();
        let link = Name::Relative("files", vec![b"link".to_vec()]);
        let through = |k| Entry {
            name: Name::Relative("files", vec![b"link".to_vec(), b"planted".to_vec()]),
            kind: k,
            mode: 0o644,
        };
        for second in [Kind::File(10), Kind::Dir] {
            let entries = [
                Entry {
                    name: link.clone(),
                    kind: Kind::Symlink(target.clone()),
                    mode: 0o777,
                },
                through(second),
            ];
            let archive = dir.path().join("a.tar.zst");
            std::fs::write(&archive, build_archive(&entries, &outside)).unwrap();
            let _ = std::fs::remove_dir_all(&stage);
            std::fs::create_dir(&stage).unwrap();
            let result = extract_backup(
                &archive,
                &stage.join("files"),
                &stage.join("private"),
                &stage.join("db"),
            );
            assert!(result.is_err());
            assert_eq!(
                std::fs::read_dir(&outside).unwrap().count(),
                0,
                "{target:?}"
            );
        }
    }
}
