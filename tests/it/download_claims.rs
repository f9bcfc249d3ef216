//! The claims of the README's "Download" section that `download.rs` did not check, each
//! against the local test server: a resumed partial file that fails its sha256 or its install
//! check is fetched again from the start; names equal after `\` and `.` are normalised are
//! duplicates; without a listing the size the server announced is checked; `Last-Modified`
//! is the validator when there is no `ETag`; `--keep-archives`; `--roboflow-project`; and an
//! explicit hub whose listing cannot be fetched stops the run.
use crate::download::{
    cut_after_head, digest_tree, download, download_from_mirror, generated_zip, hub, odinw, ranges,
    REV,
};
use crate::support;
use crate::support::{ok, scratch, text};
use support::server::{etag_of, Fault, Server};
use support::zips::{self, hub_tree_path, hub_zip_path, ZipBuilder};

/// The GETs of `path` on `server`.
fn gets(server: &Server, path: &str) -> Vec<support::server::Logged> {
    server
        .requests_for(path)
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect()
}

/// A clean install of `zip` as `pothole`, to compare other installs with.
fn clean_pothole(
    zip: &[u8],
) -> (
    tempfile::TempDir,
    std::collections::BTreeMap<String, String>,
) {
    let clean = scratch();
    ok(download(
        clean.path(),
        &hub(&[("pothole.zip", zip)]),
        "pothole",
        &[],
    ));
    let want = digest_tree(&clean.path().join("odinw"));
    (clean, want)
}

/// `<Archive>.zip.part.validator`, where the README says the partial file's validator is kept.
fn validator(part: &std::path::Path) -> std::path::PathBuf {
    let mut name = part.as_os_str().to_os_string();
    name.push(".validator");
    name.into()
}

/// Writes `bytes` as the partial file of `pothole.zip` an earlier run left under `root`.
fn plant_partial(root: &std::path::Path, bytes: &[u8]) -> std::path::PathBuf {
    let part = root.join(".odinw/partial/pothole.zip.part");
    std::fs::create_dir_all(part.parent().unwrap()).unwrap();
    std::fs::write(&part, bytes).unwrap();
    part
}

#[test]
fn a_resumed_partial_file_whose_sha256_does_not_match_is_fetched_again_from_the_start() {
    let (zip, _z) = generated_zip("pothole", 30, 4, 30_000, true);
    let (other, _o) = generated_zip("pothole", 31, 4, 30_000, true);
    let (_clean, want) = clean_pothole(&zip);
    let server = hub(&[("pothole.zip", &zip)]);
    let path = hub_zip_path(REV, "pothole.zip");
    let root = scratch();
    // An earlier run left 50 000 bytes of another file, with no validator: the listing's
    // sha256 allows the resume, and catches the splice.
    plant_partial(root.path(), &other[..50_000]);
    let out = ok(download(root.path(), &server, "pothole", &[]));
    let said = text(&out);
    assert!(
        said.contains("resuming at byte 50000")
            && said.contains(
                "sha256 mismatch after resuming an earlier partial file; downloading again \
                 from the start"
            ),
        "{said}"
    );
    assert_eq!(
        ranges(&gets(&server, &path)),
        [Some("bytes=50000-".into()), None],
        "resumed, then fetched whole"
    );
    assert_eq!(digest_tree(&root.path().join("odinw")), want);
    assert!(said.contains("1 installed"), "{said}");
}

#[test]
fn a_resumed_download_that_fails_its_install_check_is_fetched_again_from_the_start() {
    let (zip, _z) = generated_zip("pothole", 32, 6, 40_000, true);
    let (_clean, want) = clean_pothole(&zip);
    // No listing (a mirror without --hub), so no sha256: only installing the zip shows that
    // the earlier run's bytes were damaged (a flipped byte inside a stored image).
    let server = Server::start();
    let path = "/mirror/pothole.zip";
    server.add(path, zip.clone());
    let mut damaged = zip.clone();
    let pos = damaged.windows(4).position(|w| w == b".jpg").unwrap() + 200;
    assert!(pos < 100_000);
    damaged[pos] ^= 0xff;
    let root = scratch();
    let part = plant_partial(root.path(), &damaged[..100_000]);
    // The validator of the server's (unchanged) file, so the resume goes ahead.
    std::fs::write(
        validator(&part),
        serde_json::to_vec(&serde_json::json!({"etag": etag_of(&zip), "last_modified": null}))
            .unwrap(),
    )
    .unwrap();
    let out = ok(download_from_mirror(root.path(), &server, "pothole", &[]));
    let said = text(&out);
    let cached = root.path().join(".odinw/archives/pothole.zip");
    assert!(
        said.contains("resuming at byte 100000")
            && said.contains("the download of an earlier run fails its checks")
            && said.contains("is damaged")
            && said.contains(&format!("deleted {}", cached.display()))
            && said.contains("fetching it again from the start"),
        "{said}"
    );
    let got = gets(&server, path);
    assert_eq!(
        ranges(&got),
        [Some("bytes=100000-".into()), None],
        "resumed, then fetched whole"
    );
    assert_eq!(got[0].if_range, Some(etag_of(&zip)));
    assert_eq!(digest_tree(&root.path().join("odinw")), want);
}

/// A stored entry `name` of `zip` declared (local and central header) as `size` bytes; its
/// data and CRC are unchanged.
fn declare_size(mut zip: Vec<u8>, name: &str, size: u32) -> Vec<u8> {
    let mut patched = 0;
    for (sig, name_len_at, size_at, header) in
        [(b"PK\x03\x04", 26, 22, 30), (b"PK\x01\x02", 28, 24, 46)]
    {
        let mut i = 0;
        while i + header <= zip.len() {
            let n = u16::from_le_bytes([zip[i + name_len_at], zip[i + name_len_at + 1]]) as usize;
            if &zip[i..i + 4] == sig && zip.get(i + header..i + header + n) == Some(name.as_bytes())
            {
                zip[i + size_at..i + size_at + 4].copy_from_slice(&size.to_le_bytes());
                patched += 1;
            }
            i += 1;
        }
    }
    assert_eq!(patched, 2, "{name}: local and central header");
    zip
}

#[test]
fn an_entry_longer_or_shorter_than_its_declared_size_is_refused_naming_it() {
    let entry = "pothole/train/a.jpg";
    let data = vec![7u8; 1000];
    let good = {
        let mut z = ZipBuilder::new();
        z.file("pothole/train/_annotations.coco.json", b"{}");
        z.file(entry, &data);
        z.finish()
    };
    let outside = scratch();
    for (declared, why) in [
        (
            900,
            format!("entry \"{entry}\" holds more than its declared 900 bytes"),
        ),
        (
            1100,
            format!("entry \"{entry}\" has 1000 of its declared 1100 bytes"),
        ),
    ] {
        let zip = declare_size(good.clone(), entry, declared);
        let dest = outside.path().join(format!("x{declared}"));
        let err = odinw::download::extract::extract_bytes(
            &zip,
            &dest,
            &odinw::download::extract::Limits::with_available(u64::MAX),
        )
        .unwrap_err();
        assert!(
            err.downcast_ref::<odinw::download::extract::Rejected>()
                .is_some(),
            "{err:#}"
        );
        assert!(format!("{err:#}").contains(&why), "{declared}: {err:#}");

        // Through `odinw download`: refused, the zip deleted, nothing installed.
        let server = hub(&[("pothole.zip", &zip)]);
        let root = scratch();
        let out = download(root.path(), &server, "pothole", &[]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains(&why), "{declared}: {}", text(&out));
        assert!(!root.path().join("odinw/pothole").exists());
        assert!(!root.path().join(".odinw/archives/pothole.zip").exists());
    }
}

#[test]
fn entries_equal_once_backslashes_and_dots_are_normalised_are_duplicates() {
    for (second, shown) in [
        ("pothole/train/./a.jpg", "\"pothole/train/./a.jpg\""),
        ("pothole\\train\\a.jpg", "\"pothole\\\\train\\\\a.jpg\""),
        ("pothole//train/a.jpg", "\"pothole//train/a.jpg\""),
    ] {
        let mut z = ZipBuilder::new();
        z.file("pothole/train/_annotations.coco.json", b"{}");
        z.file("pothole/train/a.jpg", b"first");
        z.file(second, b"second");
        let zip = z.finish();
        let server = hub(&[("pothole.zip", &zip)]);
        let root = scratch();
        let out = download(root.path(), &server, "pothole", &[]);
        assert_eq!(out.status.code(), Some(1), "{second}: {}", text(&out));
        let want = format!("is unsafe: entry {shown} appears twice; nothing was extracted");
        assert!(text(&out).contains(&want), "{second}: {}", text(&out));
        assert!(!root.path().join("odinw").exists(), "{second}");
        assert_eq!(
            digest_tree(&root.path().join(".odinw/staging")).len(),
            0,
            "{second}: nothing was extracted"
        );
    }
}

#[test]
fn without_a_listing_the_size_the_server_announced_is_checked() {
    let (zip, _z) = generated_zip("pothole", 33, 3, 20_000, true);
    // The server announces 1000 bytes more than it has, sends what it has, and closes: the
    // bytes received form a complete, valid zip, which only the announced size shows is short.
    // Its size comes from a HEAD request, or (a server refusing HEAD) from the first GET.
    let path = "/mirror/pothole.zip";
    let announced = zip.len() + 1000;
    for head in ["answered", "refused"] {
        let server = Server::start();
        server.add(path, zip.clone());
        if head == "refused" {
            server.push_fault(path, Fault::Status(405));
        }
        server.set_always(path, vec![Fault::AnnounceLength(announced)]);
        let root = scratch();
        let out = download_from_mirror(root.path(), &server, "pothole", &[]);
        assert_eq!(out.status.code(), Some(1), "HEAD {head}: {}", text(&out));
        let said = text(&out);
        assert!(
            said.contains(&format!(
                "the server has {} bytes but {announced} were announced earlier",
                zip.len()
            )),
            "HEAD {head}: {said}"
        );
        assert_eq!(server.requests_for(path)[0].method, "HEAD");
        assert!(!root.path().join("odinw/pothole").exists());
        assert!(!root.path().join(".odinw/manifests/pothole.json").exists());
        assert!(!root.path().join(".odinw/archives/pothole.zip").exists());

        // The same server announcing the right size installs it.
        server.set_always(path, vec![]);
        let root = scratch();
        ok(download_from_mirror(root.path(), &server, "pothole", &[]));
        assert!(root.path().join(".odinw/manifests/pothole.json").is_file());
    }
}

#[test]
fn last_modified_is_the_validator_when_the_server_sends_no_etag() {
    let (old, _o) = generated_zip("pothole", 34, 6, 40_000, true);
    let (new, _n) = generated_zip("pothole", 35, 6, 40_000, true);
    let (_c, want_old) = clean_pothole(&old);
    let (_c2, want_new) = clean_pothole(&new);
    let path = "/mirror/pothole.zip";
    let monday = "Mon, 07 Dec 2026 10:00:00 GMT";
    let server = Server::start();
    server.add(path, old.clone());
    server.set_always(path, vec![Fault::LastModified(monday.into())]);

    // A run cut off after 100 000 bytes keeps the date beside the partial file...
    let root = scratch();
    cut_after_head(&server, path);
    let out = download_from_mirror(root.path(), &server, "pothole", &["--retries", "0"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let part = root.path().join(".odinw/partial/pothole.zip.part");
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 100_000);
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(validator(&part)).unwrap()).unwrap();
    assert_eq!(kept["last_modified"], serde_json::json!(monday), "{kept}");
    assert_eq!(kept["etag"], serde_json::Value::Null, "{kept}");
    // ...and the next run resumes with it in If-Range (no sha256: without a validator it would
    // start over).
    let before = gets(&server, path).len();
    let out = ok(download_from_mirror(root.path(), &server, "pothole", &[]));
    let said = text(&out);
    assert!(said.contains("resuming at byte 100000"), "{said}");
    assert!(
        !said.contains("starting over") && !said.contains("no validator"),
        "{said}"
    );
    let after = &gets(&server, path)[before..];
    assert_eq!(ranges(after), [Some("bytes=100000-".into())]);
    assert_eq!(after[0].if_range.as_deref(), Some(monday));
    assert_eq!(digest_tree(&root.path().join("odinw")), want_old);

    // The file changes on the server (a new date): the resume sends Monday's date, the server
    // answers with the whole new file, and nothing of the old one is spliced in.
    let root = scratch();
    cut_after_head(&server, path);
    let _ = download_from_mirror(root.path(), &server, "pothole", &["--retries", "0"]);
    server.replace_body(path, new.clone());
    server.set_always(
        path,
        vec![Fault::LastModified("Tue, 08 Dec 2026 10:00:00 GMT".into())],
    );
    let before = gets(&server, path).len();
    let out = ok(download_from_mirror(root.path(), &server, "pothole", &[]));
    assert!(text(&out).contains("starting over"), "{}", text(&out));
    let after = &gets(&server, path)[before..];
    assert_eq!(ranges(after), [Some("bytes=100000-".into())]);
    assert_eq!(after[0].if_range.as_deref(), Some(monday));
    assert_eq!(digest_tree(&root.path().join("odinw")), want_new);
}

#[test]
fn keep_archives_keeps_the_zip_and_a_rerun_reinstalls_it_without_the_network() {
    let (zip, _z) = generated_zip("pothole", 36, 3, 2_000, true);
    let (_clean, want) = clean_pothole(&zip);
    let server = Server::start();
    server.add("/mirror/pothole.zip", zip.clone());
    let root = scratch();
    let cached = root.path().join(".odinw/archives/pothole.zip");
    ok(download_from_mirror(
        root.path(),
        &server,
        "pothole",
        &["--keep-archives"],
    ));
    assert_eq!(
        std::fs::read(&cached).unwrap(),
        zip,
        "the verified zip is kept"
    );
    assert_eq!(digest_tree(&root.path().join("odinw")), want);

    // An installed file goes missing: the kept zip is installed again, with no request at all
    // (no listing is asked for with a mirror and no --hub).
    let gone = support::files_under(&root.path().join("odinw/pothole"))
        .into_iter()
        .find(|f| f.extension().is_some_and(|e| e == "jpg"))
        .unwrap();
    std::fs::remove_file(&gone).unwrap();
    let before = server.requests().len();
    let out = ok(download_from_mirror(
        root.path(),
        &server,
        "pothole",
        &["--keep-archives"],
    ));
    assert!(
        text(&out).contains(&format!(
            "using {}, the verified download of an earlier run",
            cached.display()
        )) && text(&out).contains("1 installed"),
        "{}",
        text(&out)
    );
    assert_eq!(server.requests().len(), before, "no request");
    assert_eq!(digest_tree(&root.path().join("odinw")), want);
    assert!(cached.is_file(), "still kept");

    // Without --keep-archives, a run drops it.
    ok(download_from_mirror(root.path(), &server, "pothole", &[]));
    assert!(!cached.exists());
}

#[test]
fn roboflow_project_overrides_the_pinned_project_for_exactly_one_task() {
    let export = scratch();
    zips::write_split_export(
        export.path(),
        37,
        &["train", "valid", "test"],
        &["Platelets", "RBC", "WBC"],
        2,
        500,
    );
    let server = Server::start();
    // BCCD's pin is version 3 of project "BCCD" (slug "bccd"); the override names another.
    let api = "/ws/blood-cells-copy/3/coco";
    server.add(
        api,
        serde_json::to_vec(
            &serde_json::json!({"export": {"link": format!("{}/dl/bccd.zip", server.url())}}),
        )
        .unwrap(),
    );
    server.add("/dl/bccd.zip", zips::zip_dir(export.path(), ""));
    let roboflow = |root: &std::path::Path, tasks: Option<&str>| {
        let mut c = odinw();
        c.args(["download", "--source", "roboflow", "--root"])
            .arg(root)
            .args([
                "--roboflow-api",
                &server.url(),
                "--roboflow-workspace",
                "ws",
            ])
            .args(["--roboflow-project", "blood-cells-copy"])
            .env("ROBOFLOW_API_KEY", "k");
        if let Some(t) = tasks {
            c.args(["--tasks", t]);
        }
        c.output().unwrap()
    };
    let root = scratch();
    ok(roboflow(root.path(), Some("BCCD")));
    assert_eq!(server.requests_for(api).len(), 1);
    assert!(server.requests_for("/ws/bccd/3/coco").is_empty());
    assert!(root
        .path()
        .join("odinw/BCCD/BCCD.v3-raw.coco/train/annotations_without_background.json")
        .is_file());

    // With two tasks, or a whole suite, it names no single project: an error before anything.
    for tasks in [Some("BCCD,Raccoon"), None] {
        let root = scratch();
        let before = server.requests().len();
        let out = roboflow(root.path(), tasks);
        assert_ne!(out.status.code(), Some(0), "{tasks:?}: {}", text(&out));
        assert!(
            text(&out).contains(
                "--roboflow-project names one project: use it with exactly one --tasks entry"
            ),
            "{tasks:?}: {}",
            text(&out)
        );
        assert_eq!(server.requests().len(), before, "{tasks:?}");
        assert!(!root.path().join("odinw").exists(), "{tasks:?}");
    }
}

#[test]
fn a_listing_that_cannot_be_fetched_from_an_explicit_hub_stops_the_run() {
    let (zip, _z) = generated_zip("pothole", 38, 2, 300, true);
    let zip_path = hub_zip_path(REV, "pothole.zip");
    for status in [404u16, 500] {
        // --hub, $HF_ENDPOINT, and --hub with --mirror: each makes the listing required.
        for how in ["--hub", "HF_ENDPOINT", "--hub with --mirror"] {
            let server = hub(&[("pothole.zip", &zip)]);
            server.set_always(&hub_tree_path(REV), vec![Fault::Status(status)]);
            server.add("/mirror/pothole.zip", zip.clone());
            let root = scratch();
            let mut c = odinw();
            c.args(["download", "--tasks", "pothole", "--root"])
                .arg(root.path());
            match how {
                "--hub" => c.args(["--hub", &server.url()]),
                "HF_ENDPOINT" => c.env("HF_ENDPOINT", server.url()),
                _ => c.args([
                    "--hub",
                    &server.url(),
                    "--mirror",
                    &format!("{}/mirror", server.url()),
                ]),
            };
            let out = c.output().unwrap();
            let said = text(&out);
            assert_eq!(out.status.code(), Some(1), "{status} {how}: {said}");
            assert!(
                said.contains("the hub's file listing for revision main could not be used")
                    && said.contains(&format!(
                        "GET {}{} returned HTTP {status}",
                        server.url(),
                        hub_tree_path(REV)
                    ))
                    && said.contains("Nothing was downloaded"),
                "{status} {how}: {said}"
            );
            assert_eq!(server.requests_for(&hub_tree_path(REV)).len(), 1);
            assert!(server.requests_for(&zip_path).is_empty(), "{status} {how}");
            assert!(
                server.requests_for("/mirror/pothole.zip").is_empty(),
                "{status} {how}"
            );
            assert!(!root.path().join("odinw").exists(), "{status} {how}");
        }
    }
    // The same hub answering: the run goes ahead (so the failures above are the listing's).
    let server = hub(&[("pothole.zip", &zip)]);
    let root = scratch();
    ok(download(root.path(), &server, "pothole", &[]));
}
