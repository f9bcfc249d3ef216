//! `odinw download` networks like pip and curl: over HTTPS from a local server whose certificate
//! a CA generated here signed, trusted only through `SSL_CERT_FILE` / `SSL_CERT_DIR` (and refused
//! with a message naming them without), and through a counting local proxy picked from
//! `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` (either case, the uppercase one winning) unless
//! `NO_PROXY` exempts the host (by IP, CIDR block, host name or `*`).
//! ONNX Runtime provisioning over HTTPS is tested in `runtime_provisioning.rs`.
use crate::support;
use crate::support::text;

use std::path::Path;
use std::process::Output;
use support::proxy::Proxy;
use support::scratch;
use support::server::Server;
use support::tls::{TestCa, TlsFront};
use support::zips::{self, hub_listing, hub_tree_path, hub_zip_path};

const REV: &str = "main";

/// `odinw download --tasks pistols` from `hub` into `root`, with only `env` set of
/// [`support::NETWORK_ENV`].
fn download(root: &Path, hub: &str, env: &[(&str, &str)]) -> Output {
    let mut c = support::odinw_clean_net();
    c.envs(env.iter().copied());
    c.args(["download", "--tasks", "pistols", "--root"])
        .arg(root)
        .args(["--hub", hub, "--retries", "0"])
        .output()
        .expect("running odinw")
}

/// A hub serving a generated `pistols.zip` (listing with size and sha256, resolve URL).
fn pistols_hub() -> (Server, Vec<u8>) {
    let src = scratch();
    zips::write_flat_export(&src.path().join("export"), 7, &["pistol"], 3, 400);
    let zip = zips::zip_dir(src.path(), "");
    let s = Server::start();
    s.add(&hub_tree_path(REV), hub_listing(&[("pistols.zip", &zip)]));
    s.add(&hub_zip_path(REV, "pistols.zip"), zip.clone());
    (s, zip)
}

/// The download succeeded and installed the archive with its sha256 checked.
fn assert_installed(root: &Path, zip: &[u8], out: &Output) {
    assert!(out.status.success(), "{}", text(out));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join(".odinw/manifests/pistols.json")).unwrap())
            .unwrap();
    assert_eq!(m["sha256"], serde_json::json!(zips::sha256_hex(zip)), "{m}");
    assert_eq!(m["sha256_verified"], serde_json::json!(true), "{m}");
    assert!(root
        .join("odinw/pistols/export/test_annotations_without_background.json")
        .is_file());
}

#[test]
fn https_download_trusts_the_ca_in_ssl_cert_file_or_dir_and_explains_a_refusal() {
    let (hub, zip) = pistols_hub();
    let ca = TestCa::new();
    let front = TlsFront::start(&ca, &hub.url());
    let pem = ca.pem();
    let pem = pem.to_str().unwrap();

    let root = scratch();
    let out = download(root.path(), &front.url(), &[("SSL_CERT_FILE", pem)]);
    assert_installed(root.path(), &zip, &out);
    assert!(front.handshakes() >= 2, "listing and zip went over TLS");
    assert!(!hub
        .requests_for(&hub_zip_path(REV, "pistols.zip"))
        .is_empty());

    let dir = ca.pem_dir();
    let root = scratch();
    let out = download(
        root.path(),
        &front.url(),
        &[("SSL_CERT_DIR", dir.to_str().unwrap())],
    );
    assert_installed(root.path(), &zip, &out);

    // Without the CA (the system store does not hold it), the certificate is refused, nothing
    // is fetched, and the message names what to set.
    let before = hub.requests().len();
    let root = scratch();
    let out = download(root.path(), &front.url(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    for want in [
        "certificate was refused",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTPS_PROXY",
        "NO_PROXY",
        "UnknownIssuer",
    ] {
        assert!(all.contains(want), "missing {want:?}:\n{all}");
    }
    assert_eq!(hub.requests().len(), before, "no request got past TLS");
    assert!(!root.path().join("odinw/pistols").exists());
}

#[test]
fn a_missing_ssl_cert_file_or_dir_is_named_before_any_request() {
    let (hub, _) = pistols_hub();
    let root = scratch();
    let out = download(
        root.path(),
        &hub.url(),
        &[("SSL_CERT_FILE", "/nonexistent/ca-bundle.pem")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("SSL_CERT_FILE=/nonexistent/ca-bundle.pem is not a file"),
        "{all}"
    );
    assert!(hub.requests().is_empty());

    let out = download(
        root.path(),
        &hub.url(),
        &[("SSL_CERT_DIR", "/etc:/nonexistent/certs")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("SSL_CERT_DIR names /nonexistent/certs, which is not a folder"),
        "{}",
        text(&out)
    );
    assert!(hub.requests().is_empty());
}

#[test]
fn https_goes_through_https_proxy_with_connect_unless_no_proxy_names_the_host() {
    let (hub, zip) = pistols_hub();
    let ca = TestCa::new();
    let front = TlsFront::start(&ca, &hub.url());
    let pem = ca.pem();
    let pem = pem.to_str().unwrap();
    let host = front.url().trim_start_matches("https://").to_string();

    for var in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
        let proxy = Proxy::start();
        let root = scratch();
        let out = download(
            root.path(),
            &front.url(),
            &[("SSL_CERT_FILE", pem), (var, &proxy.url())],
        );
        assert_installed(root.path(), &zip, &out);
        let tunnels = proxy.connects();
        assert!(tunnels.len() >= 2, "{var}: {tunnels:?}");
        assert!(tunnels.iter().all(|t| *t == host), "{var}: {tunnels:?}");
        assert!(proxy.forwards().is_empty());
    }

    // Both spellings set: the uppercase one is used.
    let (upper, lower) = (Proxy::start(), Proxy::start());
    let root = scratch();
    let out = download(
        root.path(),
        &front.url(),
        &[
            ("SSL_CERT_FILE", pem),
            ("HTTPS_PROXY", &upper.url()),
            ("https_proxy", &lower.url()),
        ],
    );
    assert_installed(root.path(), &zip, &out);
    assert!(!upper.connects().is_empty() && lower.connects().is_empty());

    let proxy = Proxy::start();
    let root = scratch();
    let out = download(
        root.path(),
        &front.url(),
        &[
            ("SSL_CERT_FILE", pem),
            ("HTTPS_PROXY", &proxy.url()),
            ("NO_PROXY", "example.org,127.0.0.1"),
        ],
    );
    assert_installed(root.path(), &zip, &out);
    assert!(proxy.connects().is_empty(), "{:?}", proxy.connects());
}

#[test]
fn plain_http_goes_through_http_proxy_unless_no_proxy_names_the_host() {
    let (hub, zip) = pistols_hub();
    for var in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        let proxy = Proxy::start();
        let before = hub.requests().len();
        let root = scratch();
        let out = download(root.path(), &hub.url(), &[(var, &proxy.url())]);
        assert_installed(root.path(), &zip, &out);
        let forwarded = proxy.forwards();
        assert_eq!(
            forwarded.len(),
            hub.requests().len() - before,
            "{var}: every request went through the proxy: {forwarded:?}"
        );
        assert!(
            forwarded
                .iter()
                .any(|u| u.ends_with(&hub_zip_path(REV, "pistols.zip"))),
            "{var}: {forwarded:?}"
        );
    }

    // Both spellings set: the uppercase one is used.
    let (upper, lower) = (Proxy::start(), Proxy::start());
    let root = scratch();
    let out = download(
        root.path(),
        &hub.url(),
        &[("HTTP_PROXY", &upper.url()), ("http_proxy", &lower.url())],
    );
    assert_installed(root.path(), &zip, &out);
    assert!(!upper.forwards().is_empty() && lower.forwards().is_empty());

    // NO_PROXY by IP, CIDR block, host name and `*` (the hub reached as `localhost` for the
    // host names; `example.org` and `.example.org` are domains that must not match it).
    let by_name = hub.url().replace("127.0.0.1", "localhost");
    for (url, no_proxy) in [
        (hub.url(), ("NO_PROXY", "127.0.0.1")),
        (hub.url(), ("NO_PROXY", "example.org, 127.0.0.0/8")),
        (hub.url(), ("no_proxy", "*")),
        (by_name.clone(), ("NO_PROXY", ".example.org,localhost")),
    ] {
        let proxy = Proxy::start();
        let root = scratch();
        let out = download(root.path(), &url, &[("HTTP_PROXY", &proxy.url()), no_proxy]);
        assert_installed(root.path(), &zip, &out);
        assert!(
            proxy.forwards().is_empty(),
            "{no_proxy:?}: {:?}",
            proxy.forwards()
        );
    }
}

/// A host name `NO_PROXY` does not list still goes through the proxy (the `localhost` run above
/// is direct because of the name, not because local addresses are never proxied).
#[test]
fn no_proxy_domains_that_do_not_match_leave_the_proxy_in_use() {
    let (hub, zip) = pistols_hub();
    let proxy = Proxy::start();
    let root = scratch();
    let url = hub.url().replace("127.0.0.1", "localhost");
    let out = download(
        root.path(),
        &url,
        &[
            ("HTTP_PROXY", &proxy.url()),
            ("NO_PROXY", "example.org,.local"),
        ],
    );
    assert_installed(root.path(), &zip, &out);
    assert!(!proxy.forwards().is_empty());
}
