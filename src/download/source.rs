//! Where archives come from: GLIP's Hugging Face mirror pinned to a revision (or any
//! `--mirror` serving `<Archive>.zip` over HTTP(S) or from a `file://` folder), and the hub's
//! tree API, which publishes each file's size and sha256 (the LFS object id) for a revision.
use anyhow::{anyhow, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;

/// The Hugging Face endpoint (`--hub`, else `$HF_ENDPOINT`, else this).
pub const HF_ENDPOINT: &str = "https://huggingface.co";
/// The model repository that hosts GLIP's ODinW zips.
pub const GLIP_REPO: &str = "GLIPModel/GLIP";
/// The folder of that repository holding the zips.
pub const GLIP_FOLDER: &str = "odinw_35";
/// The revision downloads are pinned to by default. No commit hash of `GLIPModel/GLIP` could be
/// confirmed offline, so this is the branch name; pass `--revision <commit>` to pin exactly.
pub const GLIP_REVISION: &str = "main";

/// Size and sha256 an archive is expected to have, when known.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expected {
    pub size: Option<u64>,
    pub sha256: Option<String>,
    /// Who stated `size`.
    pub size_from: SizeFrom,
}

/// Who stated an [`Expected::size`] (for messages, and whether a new whole file may replace it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SizeFrom {
    /// The hub's listing.
    #[default]
    Listing,
    /// The server itself, in an earlier answer (a HEAD request, or an earlier GET of the file).
    Server,
}

/// The base URL of GLIP's zips on the hub at `revision`.
pub fn glip_mirror(hub: &str, revision: &str) -> String {
    format!(
        "{}/{GLIP_REPO}/resolve/{}/{GLIP_FOLDER}",
        hub.trim_end_matches('/'),
        encode_segment(revision)
    )
}

/// The hub's tree API listing of GLIP's zips at `revision`.
pub fn tree_api_url(hub: &str, revision: &str) -> String {
    format!(
        "{}/api/models/{GLIP_REPO}/tree/{}/{GLIP_FOLDER}",
        hub.trim_end_matches('/'),
        encode_segment(revision)
    )
}

/// `<mirror>/<file>`, with the file name percent-encoded.
pub fn file_url(mirror: &str, file_name: &str) -> String {
    format!(
        "{}/{}",
        mirror.trim_end_matches('/'),
        encode_segment(file_name)
    )
}

/// Percent-encodes one URL path segment (RFC 3986 unreserved characters pass through).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (for `file://` URLs).
pub fn decode_percent(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Deserialize)]
struct TreeEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    lfs: Option<LfsInfo>,
}

#[derive(Deserialize)]
struct LfsInfo {
    oid: String,
    #[serde(default)]
    size: Option<u64>,
}

/// A listing that was received but cannot be trusted (not the expected JSON, an LFS oid that
/// is not a sha256, endless pagination): always an error, never a reason to skip checksums.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

/// Parses one page of the tree API: file name (without folder) → expected size and sha256.
/// Only LFS files carry a sha256 (`lfs.oid`); a plain file's `oid` is a git SHA-1 and is not used.
pub fn parse_tree(json: &[u8]) -> Result<BTreeMap<String, Expected>, Malformed> {
    let entries: Vec<TreeEntry> = serde_json::from_slice(json).map_err(|e| {
        Malformed(format!(
            "the hub's tree listing is not the expected JSON (a list of entries): {e}"
        ))
    })?;
    let mut out = BTreeMap::new();
    for e in entries.into_iter().filter(|e| e.kind == "file") {
        let name = e.path.rsplit('/').next().unwrap_or(&e.path).to_string();
        let (size, sha256) = match e.lfs {
            Some(lfs) => {
                let oid = lfs.oid.trim_start_matches("sha256:").to_ascii_lowercase();
                if oid.len() != 64 || !oid.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(Malformed(format!(
                        "the hub lists {} with an LFS oid that is not a sha256: {oid:?}",
                        e.path
                    )));
                }
                (lfs.size.or(e.size), Some(oid))
            }
            None => (e.size, None),
        };
        out.insert(
            name,
            Expected {
                size,
                sha256,
                size_from: SizeFrom::Listing,
            },
        );
    }
    Ok(out)
}

/// The `rel="next"` target of an HTTP `Link` header (the tree API paginates with it).
pub fn next_link(link_header: &str) -> Option<String> {
    link_header.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"");
        let url = url.trim();
        (is_next && url.starts_with('<') && url.ends_with('>'))
            .then(|| url[1..url.len() - 1].to_string())
    })
}

/// The largest page of the tree listing read (a real page of ~35 zips is a few KB).
const MAX_LISTING_PAGE: u64 = 16 << 20;

/// Fetches the whole tree listing (following pagination).
pub fn fetch_tree(
    client: &reqwest::blocking::Client,
    hub: &str,
    revision: &str,
) -> Result<BTreeMap<String, Expected>> {
    let mut url = tree_api_url(hub, revision);
    let mut all = BTreeMap::new();
    for _page in 0..100 {
        let resp = client
            .get(&url)
            .send()
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(anyhow!("GET {url} returned HTTP {status}"));
        }
        let next = resp
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_link);
        let mut body = Vec::new();
        resp.take(MAX_LISTING_PAGE + 1)
            .read_to_end(&mut body)
            .with_context(|| format!("reading {url}"))?;
        if body.len() as u64 > MAX_LISTING_PAGE {
            return Err(anyhow!(Malformed(format!(
                "a page of the hub's tree listing at {url} is larger than {MAX_LISTING_PAGE} bytes"
            ))));
        }
        all.extend(parse_tree(&body).map_err(|e| anyhow!(e).context(format!("parsing {url}")))?);
        match next {
            Some(n) => url = n,
            None => return Ok(all),
        }
    }
    Err(anyhow!(Malformed(format!(
        "the hub's tree listing at {url} did not end after 100 pages"
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_use_resolve_not_tree_and_encode_names() {
        assert_eq!(
            glip_mirror("https://huggingface.co/", "main"),
            "https://huggingface.co/GLIPModel/GLIP/resolve/main/odinw_35"
        );
        assert_eq!(
            tree_api_url("https://huggingface.co", "abc123"),
            "https://huggingface.co/api/models/GLIPModel/GLIP/tree/abc123/odinw_35"
        );
        assert_eq!(file_url("http://h/x/", "BCCD.zip"), "http://h/x/BCCD.zip");
        assert_eq!(file_url("http://h", "a b+c.zip"), "http://h/a%20b%2Bc.zip");
        assert_eq!(decode_percent("/tmp/a%20b/c%2Bd%"), "/tmp/a b/c+d%");
    }

    #[test]
    fn tree_listing_gives_lfs_sha256_and_ignores_git_oids_and_folders() {
        let json = br#"[
          {"type":"file","oid":"1111111111111111111111111111111111111111","size":1519,"path":"odinw_35/README.md"},
          {"type":"directory","oid":"2222222222222222222222222222222222222222","size":0,"path":"odinw_35/sub"},
          {"type":"file","oid":"3333333333333333333333333333333333333333","size":9876543,
           "lfs":{"oid":"ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789","size":9876543,"pointerSize":134},
           "path":"odinw_35/BCCD.zip"}
        ]"#;
        let t = parse_tree(json).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(
            t["BCCD.zip"],
            Expected {
                size: Some(9_876_543),
                sha256: Some(
                    "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789".into()
                ),
                size_from: SizeFrom::Listing,
            }
        );
        assert_eq!(t["README.md"].sha256, None);
        assert!(parse_tree(b"<html>").is_err());
        let bad = br#"[{"type":"file","path":"x.zip","lfs":{"oid":"nothex","size":1}}]"#;
        assert!(parse_tree(bad)
            .unwrap_err()
            .to_string()
            .contains("not a sha256"));
    }

    #[test]
    fn link_header_next_is_found() {
        let h = r#"<https://huggingface.co/api/models/x/tree/main?cursor=abc>; rel="next", <https://h/prev>; rel="prev""#;
        assert_eq!(
            next_link(h).as_deref(),
            Some("https://huggingface.co/api/models/x/tree/main?cursor=abc")
        );
        assert_eq!(next_link(r#"<https://h/prev>; rel="prev""#), None);
    }
}
