//! `odinw download`, `verify` and `list` against a local HTTP server that emulates the hub
//! (tree listing + resolve URLs) and injects faults. Zips are built in GLIP's layout from
//! generated RoboFlow-style exports (always) and from the real BCCD export in ../shared (when
//! present). Every install is compared file by file with its source or with a clean run.
use crate::support;
use crate::support::{ok, text};

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::server::{Fault, Server};
use support::zips::{self, hub_listing, hub_tree_path, hub_zip_path, ZipBuilder};
use support::{scratch, shared_data};

pub(crate) const REV: &str = "main";

/// `odinw` with a clean environment (no proxies, roots or endpoints from the caller).
/// `odinw` with none of the caller's network variables ([`support::NETWORK_ENV`]).
pub(crate) fn odinw() -> Command {
    support::odinw_clean_net()
}

pub(crate) fn run(args: &[&str]) -> Output {
    odinw().args(args).output().expect("running odinw")
}

pub(crate) fn download(root: &Path, hub: &Server, tasks: &str, extra: &[&str]) -> Output {
    odinw()
        .args(download_args(root, hub, tasks, extra))
        .output()
        .expect("running odinw")
}

fn download_args(root: &Path, hub: &Server, tasks: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "download",
        "--tasks",
        tasks,
        "--root",
        root.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(["--hub".to_string(), hub.url(), "--jobs".into(), "4".into()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// A hub with these zips (listing with sizes and sha256, resolve URLs).
pub(crate) fn hub(files: &[(&str, &[u8])]) -> Server {
    let s = Server::start();
    s.add(&hub_tree_path(REV), hub_listing(files));
    for (name, bytes) in files {
        s.add(&hub_zip_path(REV, name), bytes.to_vec());
    }
    s
}

/// Relative path → sha256 of every file under `dir`.
pub(crate) fn digest_tree(dir: &Path) -> BTreeMap<String, String> {
    support::files_under(dir)
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            (rel, zips::sha256_hex(&std::fs::read(&f).unwrap()))
        })
        .collect()
}

/// GLIP-layout zip of generated data for `archive`: its task folders (relative to the archive
/// folder) with split folders, or a flat export folder.
pub(crate) fn generated_zip(
    archive: &str,
    seed: u64,
    images: usize,
    image_bytes: usize,
    top_folder: bool,
) -> (Vec<u8>, tempfile::TempDir) {
    let src = scratch();
    let base = src.path().join(archive);
    match archive {
        "EgoHands" => {
            for (i, v) in ["generic", "specific"].iter().enumerate() {
                zips::write_split_export(
                    &base.join(v),
                    seed + i as u64,
                    &["train", "valid", "test", "mini_val"],
                    &["hand", "left"],
                    images,
                    image_bytes,
                );
            }
        }
        "pistols" => {
            zips::write_flat_export(&base.join("export"), seed, &["pistol"], images, image_bytes)
        }
        "BCCD" => zips::write_split_export(
            &base.join("BCCD.v3-raw.coco"),
            seed,
            &["train", "valid", "test"],
            &["Platelets", "RBC", "WBC"],
            images,
            image_bytes,
        ),
        _ => zips::write_split_export(
            &base,
            seed,
            &["train", "valid", "test"],
            &["thing"],
            images,
            image_bytes,
        ),
    }
    let zip = if top_folder {
        zips::zip_dir(src.path(), "")
    } else {
        zips::zip_dir(&base, "")
    };
    (zip, src)
}

pub(crate) fn list_status(root: &Path, task: &str) -> String {
    let out = ok(run(&["list", "--json", "--root", root.to_str().unwrap()]));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["task"] == task)
        .map(|r| r["status"].as_str().unwrap().to_string())
        .unwrap()
}

#[test]
fn real_bccd_export_installs_in_glip_layout_and_a_rerun_skips_it_without_the_network() {
    let Some(src) = shared_data("roboflow/BCCD.v3-raw.coco") else {
        return;
    };
    let zip = zips::zip_dir(&src, "BCCD/BCCD.v3-raw.coco/");
    // A plain mirror (`--mirror URL`) serving the zip; the listing still comes from --hub.
    let server = hub(&[]);
    server.add(&hub_tree_path(REV), hub_listing(&[("BCCD.zip", &zip)]));
    server.add("/mirror/BCCD.zip", zip.clone());
    let mirror = format!("{}/mirror", server.url());
    let root = scratch();
    let out = ok(download(
        root.path(),
        &server,
        "BCCD",
        &["--mirror", &mirror],
    ));
    let m = std::fs::read_to_string(root.path().join(".odinw/manifests/BCCD.json")).unwrap();
    assert!(
        m.contains("\"sha256_verified\": true") && m.contains("/mirror/BCCD.zip"),
        "{m}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 installed"), "{}", text(&out));

    // Registry categories (GLIP's config) are the independent reference for the result.
    let info = ok(run(&["info", "BCCD", "--json"]));
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let want_cats = id_names(&info["categories"]);
    let task_dir = root.path().join("odinw/BCCD/BCCD.v3-raw.coco");
    for split in ["train", "valid", "test"] {
        let got = digest_tree(&task_dir.join(split));
        let want = digest_tree(&src.join(split));
        for (file, sha) in &want {
            assert_eq!(
                got.get(file),
                Some(sha),
                "{split}/{file} differs or is missing"
            );
        }
        let ann: serde_json::Value = serde_json::from_slice(
            &std::fs::read(
                task_dir
                    .join(split)
                    .join("annotations_without_background.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let cats = id_names(&ann["categories"]);
        assert_eq!(cats, want_cats, "{split}");
        let raw: serde_json::Value = serde_json::from_slice(
            &std::fs::read(src.join(split).join("_annotations.coco.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(ann["images"], raw["images"]);
        assert_eq!(ann["annotations"], raw["annotations"]);
    }
    assert_eq!(list_status(root.path(), "BCCD"), "verified");
    assert_eq!(list_status(root.path(), "Aquarium"), "missing");

    let before = server.requests().len();
    let out = ok(download(
        root.path(),
        &server,
        "BCCD",
        &["--mirror", &mirror],
    ));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("verified, nothing to do"),
        "{}",
        text(&out)
    );
    assert_eq!(
        server.requests().len(),
        before,
        "a verified task needs no request"
    );
    ok(run(&[
        "verify",
        "--tasks",
        "BCCD",
        "--root",
        root.path().to_str().unwrap(),
    ]));
}

#[test]
fn two_task_and_export_layout_archives_are_installed_and_normalised() {
    let (ego, _e) = generated_zip("EgoHands", 1, 3, 500, true);
    let (pistols, _p) = generated_zip("pistols", 2, 4, 700, false); // no top folder in this zip
    let server = hub(&[("EgoHands.zip", &ego), ("pistols.zip", &pistols)]);
    let root = scratch();
    let out = ok(download(
        root.path(),
        &server,
        "EgoHands_generic,pistols",
        &[],
    ));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("2 installed"), "{}", text(&out));
    let r = root.path();
    for v in ["generic", "specific"] {
        for split in ["train", "valid", "test", "mini_val"] {
            let f = r.join(format!(
                "odinw/EgoHands/{v}/{split}/annotations_without_background.json"
            ));
            let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
            let ids: Vec<u64> = j["categories"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_u64().unwrap())
                .collect();
            assert_eq!(ids, [1, 2], "{}", f.display());
        }
    }
    for split in ["train", "val", "test"] {
        assert!(r
            .join(format!(
                "odinw/pistols/export/{split}_annotations_without_background.json"
            ))
            .is_file());
    }
    assert_eq!(list_status(r, "EgoHands_generic"), "verified");
    assert_eq!(
        list_status(r, "EgoHands_specific"),
        "verified",
        "the archive holds both"
    );
    assert_eq!(list_status(r, "pistols"), "verified");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r.join(".odinw/manifests/EgoHands.json")).unwrap())
            .unwrap();
    assert_eq!(
        manifest["tasks"],
        serde_json::json!(["EgoHands_generic", "EgoHands_specific"])
    );
    assert_eq!(
        manifest["sha256"],
        serde_json::json!(zips::sha256_hex(&ego))
    );
    assert_eq!(manifest["sha256_verified"], serde_json::json!(true));
    assert_eq!(manifest["normalized"].as_array().unwrap().len(), 8);
    // Nothing is left behind in the state folders, and the zips are gone.
    for sub in ["partial", "archives", "staging"] {
        let d = r.join(".odinw").join(sub);
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0, "{}", d.display());
    }

    // verify catches an edited file that keeps its size; list's quick check does not re-hash.
    let img = std::fs::read_dir(r.join("odinw/pistols/export"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jpg"))
        .unwrap();
    let mut bytes = std::fs::read(&img).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&img, &bytes).unwrap();
    let out = run(&[
        "verify",
        "--tasks",
        "pistols,EgoHands_generic",
        "--root",
        r.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("DAMAGED: 1 changed") && stdout.contains("1 verified, 1 damaged"),
        "{stdout}"
    );

    // A plain re-run compares sizes only (that is what makes it instant); --recheck re-hashes
    // and repairs.
    let out = ok(download(r, &server, "pistols", &[]));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("verified, nothing to do"),
        "{}",
        text(&out)
    );
    let out = ok(download(r, &server, "pistols", &["--recheck"]));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 installed"),
        "{}",
        text(&out)
    );
    ok(run(&[
        "verify",
        "--tasks",
        "pistols",
        "--root",
        r.to_str().unwrap(),
    ]));

    // A deleted file makes the task unverified, and a re-run repairs it.
    std::fs::remove_file(&img).unwrap();
    assert_eq!(list_status(r, "pistols"), "present");
    let out = ok(download(r, &server, "pistols", &[]));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 installed"),
        "{}",
        text(&out)
    );
    ok(run(&[
        "verify",
        "--tasks",
        "pistols",
        "--root",
        r.to_str().unwrap(),
    ]));
}

/// Installs `archive` (generated) through a hub whose zip route has `faults` queued, and checks
/// the result equals a clean install; returns the zip's requests.
fn install_through_faults(
    archive: &str,
    task: &str,
    faults: Vec<Fault>,
    extra: &[&str],
) -> Vec<support::server::Logged> {
    let (zip, _src) = generated_zip(archive, 7, 6, 40_000, true);
    let name = format!("{archive}.zip");
    let clean_hub = hub(&[(&name, &zip)]);
    let clean = scratch();
    ok(download(clean.path(), &clean_hub, task, &[]));

    let server = hub(&[(&name, &zip)]);
    let path = hub_zip_path(REV, &name);
    for f in faults {
        server.push_fault(&path, f);
    }
    let root = scratch();
    let out = ok(download(root.path(), &server, task, extra));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 installed"),
        "{}",
        text(&out)
    );
    assert_eq!(
        digest_tree(&root.path().join("odinw")),
        digest_tree(&clean.path().join("odinw"))
    );
    server.requests_for(&path)
}

pub(crate) fn ranges(reqs: &[support::server::Logged]) -> Vec<Option<String>> {
    reqs.iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.range.clone())
        .collect()
}

#[test]
fn a_truncated_body_is_resumed_with_a_range_request() {
    let reqs = install_through_faults("pothole", "pothole", vec![Fault::Truncate(100_000)], &[]);
    assert_eq!(ranges(&reqs), [None, Some("bytes=100000-".into())]);
}

#[test]
fn a_connection_reset_mid_stream_is_resumed() {
    let reqs = install_through_faults("pothole", "pothole", vec![Fault::Reset(200_000)], &[]);
    let r = ranges(&reqs);
    assert_eq!(r.len(), 2, "{r:?}");
    let resumed_at: u64 = r[1]
        .as_deref()
        .unwrap()
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(resumed_at > 0 && resumed_at <= 200_000, "{r:?}");
}

#[test]
fn server_errors_are_retried_with_backoff() {
    let reqs = install_through_faults(
        "pothole",
        "pothole",
        vec![Fault::Status(500), Fault::Status(503)],
        &[],
    );
    assert_eq!(ranges(&reqs), [None, None, None]);
}

#[test]
fn a_stalled_server_times_out_and_the_transfer_resumes() {
    let reqs = install_through_faults(
        "pothole",
        "pothole",
        vec![Fault::Stall(150_000, Duration::from_secs(4))],
        &["--timeout", "0.5"],
    );
    assert_eq!(ranges(&reqs), [None, Some("bytes=150000-".into())]);
}

#[test]
fn a_server_that_ignores_range_is_handled_by_starting_over() {
    let (zip, _src) = generated_zip("pothole", 3, 4, 30_000, true);
    let server = hub(&[("pothole.zip", &zip)]);
    let path = hub_zip_path(REV, "pothole.zip");
    let root = scratch();
    // An earlier run left the first 50 000 bytes.
    let part = root.path().join(".odinw/partial/pothole.zip.part");
    std::fs::create_dir_all(part.parent().unwrap()).unwrap();
    std::fs::write(&part, &zip[..50_000]).unwrap();
    server.set_always(&path, vec![Fault::IgnoreRange]);
    let out = ok(download(root.path(), &server, "pothole", &[]));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("resuming at byte 50000"),
        "{}",
        text(&out)
    );
    assert_eq!(
        ranges(&server.requests_for(&path)),
        [Some("bytes=50000-".into())]
    );
    assert_eq!(list_status(root.path(), "pothole"), "verified");
}

#[test]
fn a_checksum_mismatch_is_refused_and_leaves_verified_data_alone() {
    let (good, _g) = generated_zip("pothole", 4, 3, 2_000, true);
    let (bad, _b) = generated_zip("CottontailRabbits", 5, 3, 2_000, true);
    let server = hub(&[("pothole.zip", &good), ("CottontailRabbits.zip", &bad)]);
    // The listing publishes another file's checksum for the rabbits (same size).
    let mut tampered = bad.clone();
    let last = tampered.len() - 30;
    tampered[last] ^= 1;
    server.add(
        &hub_tree_path(REV),
        hub_listing(&[("pothole.zip", &good), ("CottontailRabbits.zip", &tampered)]),
    );
    let root = scratch();
    ok(download(root.path(), &server, "pothole", &[]));
    let before = digest_tree(&root.path().join("odinw"));
    let out = download(root.path(), &server, "pothole,CottontailRabbits", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("sha256 mismatch") && all.contains("CottontailRabbits.zip"),
        "{all}"
    );
    assert!(all.contains("1 already verified, 1 failed"), "{all}");
    assert_eq!(
        digest_tree(&root.path().join("odinw")),
        before,
        "verified data untouched"
    );
    assert!(!root.path().join("odinw/CottontailRabbits").exists());
    assert!(!root
        .path()
        .join(".odinw/partial/CottontailRabbits.zip.part")
        .exists());
    assert!(!root
        .path()
        .join(".odinw/manifests/CottontailRabbits.json")
        .exists());
}

#[test]
fn a_missing_archive_names_the_url_and_what_to_try() {
    let server = hub(&[]);
    let root = scratch();
    let out = download(root.path(), &server, "Raccoon", &[]);
    assert_eq!(out.status.code(), Some(1));
    let all = text(&out);
    let url = format!("{}{}", server.url(), hub_zip_path(REV, "Raccoon.zip"));
    assert!(all.contains(&url) && all.contains("404"), "{all}");
    assert!(
        all.contains("--mirror") && all.contains("--revision") && all.contains("--source roboflow"),
        "{all}"
    );
}

#[test]
fn a_file_mirror_folder_works_without_the_hub() {
    let (zip, _src) = generated_zip("WildfireSmoke", 8, 3, 1_000, false);
    let mirror = scratch();
    std::fs::write(mirror.path().join("WildfireSmoke.zip"), &zip).unwrap();
    let root = scratch();
    let url = format!("file://{}", mirror.path().display());
    let out = ok(run(&[
        "download",
        "--tasks",
        "WildfireSmoke",
        "--root",
        root.path().to_str().unwrap(),
        "--mirror",
        &url,
    ]));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 installed"),
        "{}",
        text(&out)
    );
    assert!(root
        .path()
        .join("odinw/WildfireSmoke/valid/annotations_without_background.json")
        .is_file());
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.path().join(".odinw/manifests/WildfireSmoke.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        m["sha256_verified"],
        serde_json::json!(false),
        "no listing was asked for"
    );
    assert_eq!(m["sha256"], serde_json::json!(zips::sha256_hex(&zip)));
}

fn malicious(entries: &dyn Fn(&mut ZipBuilder)) -> Vec<u8> {
    let mut z = ZipBuilder::new();
    z.file("pothole/train/_annotations.coco.json", b"{}");
    entries(&mut z);
    z.finish()
}

#[test]
fn zip_slip_absolute_paths_and_escaping_links_are_rejected_before_writing() {
    let outside = scratch();
    let target = outside.path().join("owned.txt");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "dot-dot",
            malicious(&|z| {
                z.file("pothole/../../../owned.txt", b"x");
            }),
        ),
        (
            "absolute",
            malicious(&|z| {
                z.file(target.to_str().unwrap(), b"x");
            }),
        ),
        (
            "backslash",
            malicious(&|z| {
                z.file("pothole\\..\\..\\owned.txt", b"x");
            }),
        ),
        (
            "link",
            malicious(&|z| {
                z.symlink("pothole/train/link", outside.path().to_str().unwrap());
            }),
        ),
        (
            "relative-link",
            malicious(&|z| {
                z.symlink("pothole/l", "../../../..");
                z.file("pothole/l2/x", b"x");
            }),
        ),
        (
            // Issue #12: each link looks harmless on its own text; followed, `x` is `/etc`.
            "link-chain",
            malicious(&|z| {
                z.symlink("pothole/a", "..");
                for (l, prev) in [("b", "a"), ("c", "b"), ("d", "c"), ("e", "d")] {
                    z.symlink(&format!("pothole/{l}"), &format!("{prev}/.."));
                }
                z.symlink("pothole/f", "e/../../..");
                z.symlink("pothole/g", "f/..");
                z.symlink("pothole/h", "g/..");
                z.symlink("pothole/x", "h/etc");
            }),
        ),
        (
            "file-beneath-a-link",
            malicious(&|z| {
                z.symlink("pothole/train/d", ".");
                z.file("pothole/train/d/owned.txt", b"x");
            }),
        ),
        (
            // An annotation file naming an image outside its split folder.
            "image-outside",
            {
                let mut z = ZipBuilder::new();
                z.file(
                    "pothole/train/_annotations.coco.json",
                    br#"{"images": [{"id": 1, "file_name": "/etc/passwd"}],
                         "categories": [{"id": 1, "name": "pothole"}], "annotations": []}"#,
                );
                z.finish()
            },
        ),
        (
            // Two entries of exactly one name: the zip crate keeps only the last.
            "exact-duplicate",
            zips::rename_entry(
                malicious(&|z| {
                    z.file("pothole/train/a.jpg", b"first");
                    z.file("pothole/train/b.jpg", b"second");
                }),
                "pothole/train/b.jpg",
                "pothole/train/a.jpg",
            ),
        ),
    ];
    for (what, zip) in cases {
        let server = hub(&[("pothole.zip", &zip)]);
        let root = scratch();
        let out = download(root.path(), &server, "pothole", &[]);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out));
        assert!(text(&out).contains("is unsafe"), "{what}: {}", text(&out));
        let why = match what {
            "link-chain" => "leaves the folder once every link is followed",
            "file-beneath-a-link" => "lies beneath the link",
            "exact-duplicate" => "\"pothole/train/a.jpg\" appears twice",
            "image-outside" => {
                "1 image paths that leave the split folder (e.g. image 1 \"/etc/passwd\")"
            }
            _ => "",
        };
        assert!(text(&out).contains(why), "{what}: {}", text(&out));
        assert!(!target.exists(), "{what}");
        assert!(
            !root.path().join("odinw").exists(),
            "{what}: nothing installed"
        );
        assert_eq!(
            std::fs::read_dir(outside.path()).unwrap().count(),
            0,
            "{what}"
        );
        assert!(
            !root.path().join(".odinw/archives/pothole.zip").exists(),
            "{what}: rejected zip dropped"
        );
    }
}

#[test]
fn a_damaged_zip_is_rejected_and_nothing_moves_into_place() {
    let (mut zip, _src) = generated_zip("pothole", 9, 3, 5_000, true);
    // Flip a byte inside the first stored image's data (after its local header).
    let pos = zip.windows(4).position(|w| w == b".jpg").unwrap() + 200;
    zip[pos] ^= 0xff;
    let server = hub(&[("pothole.zip", &zip)]);
    let root = scratch();
    let out = download(root.path(), &server, "pothole", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("is damaged"), "{}", text(&out));
    assert!(!root.path().join("odinw/pothole").exists());
    assert!(!root.path().join(".odinw/manifests/pothole.json").exists());
}

#[test]
fn a_folder_that_odinw_did_not_write_is_never_replaced() {
    let (zip, _src) = generated_zip("pothole", 10, 2, 100, true);
    let server = hub(&[("pothole.zip", &zip)]);
    let root = scratch();
    let mine = root.path().join("odinw/pothole/train/mine.txt");
    std::fs::create_dir_all(mine.parent().unwrap()).unwrap();
    std::fs::write(&mine, "my notes").unwrap();
    let out = download(root.path(), &server, "pothole", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("was not installed by odinw download"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "my notes");
    assert!(
        server
            .requests_for(&hub_zip_path(REV, "pothole.zip"))
            .is_empty(),
        "refused before downloading"
    );
}

#[test]
fn the_hub_listing_is_followed_across_pages() {
    let (a, _a) = generated_zip("pothole", 11, 2, 100, true);
    let (b, _b) = generated_zip("Raccoon", 12, 2, 100, true);
    let server = Server::start();
    let page2 = format!("{}?cursor=2", hub_tree_path(REV));
    server.add_with_headers(
        &hub_tree_path(REV),
        hub_listing(&[("pothole.zip", &a)]),
        vec![(
            "Link".into(),
            format!("<{}{page2}>; rel=\"next\"", server.url()),
        )],
    );
    // The second page lists the wrong checksum for Raccoon: it must have been read.
    let mut wrong = b.clone();
    wrong[0] ^= 1;
    server.add(&page2, hub_listing(&[("Raccoon.zip", &wrong)]));
    server.add(&hub_zip_path(REV, "pothole.zip"), a.clone());
    server.add(&hub_zip_path(REV, "Raccoon.zip"), b.clone());
    let root = scratch();
    let out = download(root.path(), &server, "pothole,Raccoon", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("Raccoon.zip") && text(&out).contains("sha256 mismatch"),
        "{}",
        text(&out)
    );
    assert_eq!(list_status(root.path(), "pothole"), "verified");
}

#[test]
fn roboflow_source_fetches_the_pinned_version_and_never_shows_the_key() {
    let export = scratch();
    zips::write_split_export(
        export.path(),
        13,
        &["train", "valid", "test"],
        &["Platelets", "RBC", "WBC"],
        3,
        800,
    );
    let zip = zips::zip_dir(export.path(), "");
    let server = Server::start();
    let api = "/ws-slug/bccd/3/coco";
    server.add(
        api,
        serde_json::to_vec(
            &serde_json::json!({"export": {"link": format!("{}/dl/bccd.zip", server.url())}}),
        )
        .unwrap(),
    );
    server.push_fault(api, Fault::Body(br#"{"progress": 0.5}"#.to_vec()));
    server.add("/dl/bccd.zip", zip);
    let root = scratch();
    let out = odinw()
        .args([
            "download",
            "--source",
            "roboflow",
            "--tasks",
            "BCCD",
            "--root",
            root.path().to_str().unwrap(),
            "--roboflow-api",
            &server.url(),
            "--roboflow-workspace",
            "ws-slug",
        ])
        .env("ROBOFLOW_API_KEY", "sekrit-key")
        .output()
        .unwrap();
    let out = ok(out);
    let reqs = server.requests_for(api);
    assert_eq!(reqs.len(), 2, "asked again while the export was prepared");
    assert!(reqs[0].target.ends_with("?api_key=sekrit-key"));
    for split in ["train", "valid", "test"] {
        assert!(root
            .path()
            .join(format!(
                "odinw/BCCD/BCCD.v3-raw.coco/{split}/annotations_without_background.json"
            ))
            .is_file());
    }
    assert_eq!(list_status(root.path(), "BCCD"), "verified");
    let manifest = std::fs::read_to_string(root.path().join(".odinw/manifests/BCCD.json")).unwrap();
    assert!(!text(&out).contains("sekrit") && !manifest.contains("sekrit"));
    assert!(manifest.contains("\"source\": \"roboflow\""));

    // Tasks without a pin and runs without a key fail clearly.
    let out = odinw()
        .args([
            "download",
            "--source",
            "roboflow",
            "--tasks",
            "EgoHands_generic",
            "--root",
            root.path().to_str().unwrap(),
            "--roboflow-api",
            &server.url(),
            "--roboflow-workspace",
            "ws",
        ])
        .env("ROBOFLOW_API_KEY", "k")
        .output()
        .unwrap();
    assert!(text(&out).contains("no RoboFlow pin"), "{}", text(&out));
    let out = run(&[
        "download",
        "--source",
        "roboflow",
        "--tasks",
        "Raccoon",
        "--root",
        root.path().to_str().unwrap(),
        "--roboflow-workspace",
        "ws",
    ]);
    assert!(text(&out).contains("ROBOFLOW_API_KEY"), "{}", text(&out));
}

/// Waits until `path` holds at least `bytes`, or panics after `limit`.
fn wait_for_size(path: &Path, bytes: u64, limit: Duration) {
    let start = Instant::now();
    while std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) < bytes {
        assert!(
            start.elapsed() < limit,
            "{} never reached {bytes} bytes",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_download_killed_half_way_resumes_and_gives_byte_identical_files() {
    let (zip, _src) = generated_zip("BCCD", 14, 20, 100_000, true); // about 6 MB
    let clean = scratch();
    ok(download(
        clean.path(),
        &hub(&[("BCCD.zip", &zip)]),
        "BCCD",
        &[],
    ));

    let server = hub(&[("BCCD.zip", &zip)]);
    let path = hub_zip_path(REV, "BCCD.zip");
    server.set_always(&path, vec![Fault::Throttle(4 << 20)]);
    let root = scratch();
    let mut child = odinw()
        .args(download_args(root.path(), &server, "BCCD", &[]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let part = root.path().join(".odinw/partial/BCCD.zip.part");
    wait_for_size(&part, zip.len() as u64 / 3, Duration::from_secs(20));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(
        kept > 0 && kept < zip.len() as u64,
        "killed half way: {kept} of {}",
        zip.len()
    );
    assert!(!root.path().join("odinw/BCCD").exists());
    assert_eq!(list_status(root.path(), "BCCD"), "missing");

    server.set_always(&path, vec![]);
    let out = ok(download(root.path(), &server, "BCCD", &[]));
    let all = text(&out);
    assert!(all.contains("resuming at byte"), "{all}");
    let gets = ranges(&server.requests_for(&path));
    let resumed: u64 = gets
        .last()
        .unwrap()
        .as_deref()
        .unwrap()
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert_eq!(resumed, kept, "resumed where the killed run stopped");
    assert_eq!(
        digest_tree(&root.path().join("odinw")),
        digest_tree(&clean.path().join("odinw"))
    );
    assert_eq!(list_status(root.path(), "BCCD"), "verified");
}

#[test]
fn a_run_killed_at_any_point_is_completed_by_the_next_run() {
    let (zip, _src) = generated_zip("EgoHands", 15, 30, 8_000, true); // many small files
    let clean = scratch();
    ok(download(
        clean.path(),
        &hub(&[("EgoHands.zip", &zip)]),
        "EgoHands_generic",
        &[],
    ));
    let want = digest_tree(&clean.path().join("odinw"));
    let server = hub(&[("EgoHands.zip", &zip)]);
    server.set_always(
        &hub_zip_path(REV, "EgoHands.zip"),
        vec![Fault::Throttle(8 << 20)],
    );
    // How long an uninterrupted run takes here; kill at points spread over it.
    let t = Instant::now();
    ok(download(scratch().path(), &server, "EgoHands_generic", &[]));
    let full = t.elapsed();
    for k in 1..=6u32 {
        let root = scratch();
        let mut child = odinw()
            .args(download_args(root.path(), &server, "EgoHands_generic", &[]))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full * k / 7);
        let _ = child.kill();
        child.wait().unwrap();
        let status = list_status(root.path(), "EgoHands_generic");
        assert!(
            status == "verified" || status == "missing",
            "kill {k}: half-installed ({status})"
        );
        let st = root.path().join(".odinw");
        let non_empty = |d: &str| {
            std::fs::read_dir(st.join(d))
                .map(|r| r.count() > 0)
                .unwrap_or(false)
        };
        eprintln!(
            "kill {k} at {:?}: partial {} archive {} staging {} manifest {} installed {}",
            full * k / 7,
            non_empty("partial"),
            non_empty("archives"),
            non_empty("staging"),
            non_empty("manifests"),
            root.path().join("odinw/EgoHands").exists()
        );
        ok(download(root.path(), &server, "EgoHands_generic", &[]));
        assert_eq!(digest_tree(&root.path().join("odinw")), want, "kill {k}");
        for sub in ["partial", "archives", "staging"] {
            assert_eq!(
                std::fs::read_dir(root.path().join(".odinw").join(sub))
                    .unwrap()
                    .count(),
                0,
                "kill {k}: {sub}"
            );
        }
    }
}

#[test]
fn registry_suites_match_glip_download_list_and_configs() {
    // GLIP's odinw/download.py archive list (33 names, "vector" has no config).
    let glip: std::collections::BTreeSet<&str> = [
        "AerialMaritimeDrone",
        "AmericanSignLanguageLetters",
        "Aquarium",
        "BCCD",
        "ChessPieces",
        "CottontailRabbits",
        "DroneControl",
        "EgoHands",
        "HardHatWorkers",
        "MaskWearing",
        "MountainDewCommercial",
        "NorthAmericaMushrooms",
        "OxfordPets",
        "PKLot",
        "Packages",
        "PascalVOC",
        "Raccoon",
        "ShellfishOpenImages",
        "ThermalCheetah",
        "UnoCards",
        "VehiclesOpenImages",
        "WildfireSmoke",
        "boggleBoards",
        "brackishUnderwater",
        "dice",
        "openPoetryVision",
        "pistols",
        "plantdoc",
        "pothole",
        "selfdrivingCar",
        "thermalDogsAndPeople",
        "vector",
        "websiteScreenshots",
    ]
    .into_iter()
    .collect();
    let mut archives = std::collections::BTreeSet::new();
    for (suite, n) in [("odinw35", 35), ("odinw13", 13)] {
        let out = ok(run(&[
            "list",
            "--json",
            "--suite",
            suite,
            "--root",
            "/nonexistent-odinw-root",
        ]));
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(rows.as_array().unwrap().len(), n, "{suite}");
        assert!(rows
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "missing"));
        for r in rows.as_array().unwrap() {
            let info = ok(run(&[
                "info",
                r["task"].as_str().unwrap(),
                "--suite",
                suite,
                "--json",
            ]));
            let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
            archives.insert(info["archive"].as_str().unwrap().to_string());
        }
    }
    let expected: std::collections::BTreeSet<String> = glip
        .iter()
        .filter(|a| **a != "vector")
        .map(|a| a.to_string())
        .collect();
    assert_eq!(archives, expected);
}

#[test]
fn the_demo_suite_is_listed_from_the_bundled_data() {
    let out = ok(run(&["list", "--json", "--suite", "demo"]));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r["status"] == "present"), "{rows:?}");
    let out = ok(run(&["info", "NovelShapes", "--suite", "demo"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("generated by scripts/make_demo_suite.py"),
        "{text}"
    );
    let out = ok(run(&["verify", "--suite", "demo"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("built into odinw"));
}

/// `(id, name)` of each entry of a COCO `categories` list.
fn id_names(categories: &serde_json::Value) -> Vec<(u64, String)> {
    categories
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_u64().unwrap(),
                c["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `odinw download --mirror <server>/mirror` without `--hub`: no listing, so no sha256.
pub(crate) fn download_from_mirror(
    root: &Path,
    server: &Server,
    task: &str,
    extra: &[&str],
) -> Output {
    let mirror = format!("{}/mirror", server.url());
    let mut args = vec![
        "download",
        "--tasks",
        task,
        "--root",
        root.to_str().unwrap(),
        "--mirror",
        &mirror,
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn verify_and_list_catch_an_installed_link_chain_that_leaves_the_folder() {
    let (zip, _src) = generated_zip("pothole", 20, 2, 300, true);
    let server = hub(&[("pothole.zip", &zip)]);
    let root = scratch();
    ok(download(root.path(), &server, "pothole", &[]));
    let r = root.path().to_str().unwrap();
    ok(run(&["verify", "--tasks", "pothole", "--root", r]));
    // Planted after the install (by hand, or by an older odinw): `x` resolves to /etc.
    let dir = root.path().join("odinw/pothole");
    let link = |t: &str, l: &str| std::os::unix::fs::symlink(t, dir.join(l)).unwrap();
    link("..", "a");
    link("a/..", "b");
    link("b/..", "c");
    link("c/../../../../../../../../../..", "h");
    link("h/etc", "x");
    assert_eq!(
        std::fs::canonicalize(dir.join("x")).unwrap(),
        Path::new("/etc"),
        "the planted chain really leads out"
    );
    let out = run(&["verify", "--tasks", "pothole", "--root", r]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.contains("DAMAGED: 5 links leaving the folder (pothole/a, pothole/b, pothole/c, ...)"),
        "{said}"
    );
    assert_eq!(list_status(root.path(), "pothole"), "present");
    // A re-run reinstalls the archive, and the links are gone.
    ok(download(root.path(), &server, "pothole", &[]));
    assert!(std::fs::symlink_metadata(dir.join("x")).is_err());
    ok(run(&["verify", "--tasks", "pothole", "--root", r]));
}

#[test]
fn a_zip_bomb_is_refused_before_anything_is_written() {
    // ~100 MB of zeros in a ~100 KB zip: over 100 times its size and over the 64 MiB floor.
    let mut z = ZipBuilder::new();
    z.file("pothole/train/_annotations.coco.json", b"{}");
    z.zeros("pothole/train/zeros.jpg", 100 << 20);
    let zip = z.finish();
    assert!(zip.len() < 1 << 20, "{}", zip.len());
    let server = hub(&[("pothole.zip", &zip)]);
    let root = scratch();
    let out = download(root.path(), &server, "pothole", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("more than 100x its own") && text(&out).contains("zip bomb"),
        "{}",
        text(&out)
    );
    assert!(!root.path().join("odinw").exists());
    assert_eq!(
        digest_tree(&root.path().join(".odinw/staging")).len(),
        0,
        "nothing was extracted"
    );
    assert!(!root.path().join(".odinw/archives/pothole.zip").exists());
}

#[test]
fn a_damaged_cached_archive_is_deleted_named_and_fetched_again() {
    let (good, _g) = generated_zip("pothole", 21, 3, 2_000, true);
    let clean = scratch();
    ok(download(
        clean.path(),
        &hub(&[("pothole.zip", &good)]),
        "pothole",
        &[],
    ));

    // An earlier run left a zip in archives/ that has since been damaged; there is no listing
    // (a mirror without --hub), so only installing it shows the damage.
    let server = Server::start();
    server.add("/mirror/pothole.zip", good.clone());
    let root = scratch();
    let cached = root.path().join(".odinw/archives/pothole.zip");
    std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
    let mut bad = good.clone();
    let pos = bad.windows(4).position(|w| w == b".jpg").unwrap() + 200;
    bad[pos] ^= 0xff;
    std::fs::write(&cached, &bad).unwrap();
    let out = ok(download_from_mirror(root.path(), &server, "pothole", &[]));
    let said = text(&out);
    assert!(
        said.contains(&format!("deleted {}", cached.display()))
            && said.contains("fetching it again from the start"),
        "{said}"
    );
    assert_eq!(
        server
            .requests_for("/mirror/pothole.zip")
            .iter()
            .filter(|r| r.method == "GET")
            .count(),
        1
    );
    assert_eq!(
        digest_tree(&root.path().join("odinw")),
        digest_tree(&clean.path().join("odinw"))
    );

    // A mirror serving a zip whose annotation file is broken: the zip is deleted (and named),
    // not reused; once the mirror is fixed, the next run installs the good one.
    let mut z = ZipBuilder::new();
    z.file("pothole/train/_annotations.coco.json", b"{\"images\": [tru");
    z.file("pothole/valid/_annotations.coco.json", b"{}");
    let broken = z.finish();
    let server = Server::start();
    server.add("/mirror/pothole.zip", broken);
    let root = scratch();
    let cached = root.path().join(".odinw/archives/pothole.zip");
    let out = download_from_mirror(root.path(), &server, "pothole", &["--keep-archives"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("deleted {}", cached.display())),
        "{}",
        text(&out)
    );
    assert!(!cached.exists());
    server.add("/mirror/pothole.zip", good.clone());
    let out = ok(download_from_mirror(
        root.path(),
        &server,
        "pothole",
        &["--recheck"],
    ));
    assert!(!text(&out).contains("earlier run"), "{}", text(&out));
    assert_eq!(
        digest_tree(&root.path().join("odinw")),
        digest_tree(&clean.path().join("odinw"))
    );
}

/// The next GET of `path` ends after 100 000 bytes (with no listing, a HEAD asks for the size
/// first and takes the first queued fault).
pub(crate) fn cut_after_head(server: &Server, path: &str) {
    server.push_fault(path, Fault::Truncate(100_000));
    server.push_fault(path, Fault::Truncate(100_000));
}

#[test]
fn a_resume_after_the_servers_file_changed_starts_over() {
    let (old, _o) = generated_zip("pothole", 22, 6, 40_000, true);
    let (new, _n) = generated_zip("pothole", 23, 6, 40_000, true);
    assert_ne!(old, new);
    let clean = scratch();
    ok(download(
        clean.path(),
        &hub(&[("pothole.zip", &new)]),
        "pothole",
        &[],
    ));

    let server = Server::start();
    let path = "/mirror/pothole.zip";
    server.add(path, old.clone());
    cut_after_head(&server, path);
    let root = scratch();
    let out = download_from_mirror(root.path(), &server, "pothole", &["--retries", "0"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let part = root.path().join(".odinw/partial/pothole.zip.part");
    assert_eq!(std::fs::read(&part).unwrap(), old[..100_000]);

    // The file changes on the server; the next run's resume carries the old ETag in If-Range,
    // the server answers with the whole new file, and nothing of the old one is spliced in.
    server.replace_body(path, new.clone());
    let out = ok(download_from_mirror(root.path(), &server, "pothole", &[]));
    let said = text(&out);
    assert!(said.contains("starting over"), "{said}");
    let gets: Vec<_> = server
        .requests_for(path)
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    let last = gets.last().unwrap();
    assert_eq!(last.range.as_deref(), Some("bytes=100000-"));
    assert_eq!(last.if_range, Some(support::server::etag_of(&old)));
    assert_eq!(
        digest_tree(&root.path().join("odinw")),
        digest_tree(&clean.path().join("odinw"))
    );

    // Same file, same ETag: the resume goes ahead.
    let root = scratch();
    cut_after_head(&server, path);
    let _ = download_from_mirror(root.path(), &server, "pothole", &["--retries", "0"]);
    let out = ok(download_from_mirror(root.path(), &server, "pothole", &[]));
    assert!(
        text(&out).contains("resuming at byte 100000"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("starting over"), "{}", text(&out));

    // A server with no validator at all, and no published sha256: nothing can show that the
    // partial file is of the same version, so it is not resumed.
    let root = scratch();
    server.set_always(path, vec![Fault::NoValidators]);
    cut_after_head(&server, path);
    let _ = download_from_mirror(root.path(), &server, "pothole", &["--retries", "0"]);
    let before = server.requests_for(path).len();
    let out = ok(download_from_mirror(root.path(), &server, "pothole", &[]));
    assert!(text(&out).contains("no validator"), "{}", text(&out));
    let after: Vec<_> = server.requests_for(path)[before..]
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.range.clone())
        .collect();
    assert_eq!(after, [None], "fetched whole");
}

#[test]
fn a_malformed_listing_from_an_explicit_hub_stops_the_run() {
    let (zip, _z) = generated_zip("pothole", 24, 2, 300, true);
    let mut listing: serde_json::Value =
        serde_json::from_slice(&hub_listing(&[("pothole.zip", &zip)])).unwrap();
    listing[0]["lfs"]["oid"] = serde_json::json!("not-a-sha256-zzzz");
    for (what, body) in [
        ("non-hex oid", serde_json::to_vec(&listing).unwrap()),
        ("not a list", br#"{"error": "busy"}"#.to_vec()),
    ] {
        let server = hub(&[("pothole.zip", &zip)]);
        server.add(&hub_tree_path(REV), body);
        let root = scratch();
        let out = download(root.path(), &server, "pothole", &[]);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out));
        let said = text(&out);
        assert!(
            said.contains("listing") && said.contains("sha256 could not be checked"),
            "{what}: {said}"
        );
        assert!(
            server
                .requests_for(&hub_zip_path(REV, "pothole.zip"))
                .is_empty(),
            "{what}: nothing downloaded"
        );
        assert!(!root.path().join("odinw").exists());
    }
}

#[test]
fn a_server_that_trickles_bytes_is_given_up_at_the_deadline() {
    let (zip, _z) = generated_zip("pothole", 25, 4, 40_000, true);
    let server = hub(&[("pothole.zip", &zip)]);
    let path = hub_zip_path(REV, "pothole.zip");
    // 16 KiB every 0.8 s: each read succeeds well within --timeout, so only a deadline ends it.
    server.set_always(&path, vec![Fault::Throttle(20_000)]);
    let root = scratch();
    let out = download(root.path(), &server, "pothole", &["--deadline", "1.5"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("longer than its deadline of 1.5 s (--deadline)"),
        "{}",
        text(&out)
    );
    let kept = std::fs::metadata(root.path().join(".odinw/partial/pothole.zip.part"))
        .unwrap()
        .len();
    assert!(kept > 0 && kept < zip.len() as u64, "{kept}");
    assert_eq!(ranges(&server.requests_for(&path)), [None], "not retried");
}
