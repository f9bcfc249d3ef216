//! `--source roboflow`: RoboFlow's own COCO export of a task's pinned project version, through
//! its REST API. `GET {api}/{workspace}/{project}/{version}/coco?api_key=KEY` answers with JSON
//! holding `export.link`, a URL of the zip (while RoboFlow is still preparing the export it
//! answers without the link, and is asked again). The key comes from `ROBOFLOW_API_KEY` and is
//! never printed or stored.
use super::fetch::RetryPolicy;
use super::source::encode_segment;
use crate::registry::Task;
use anyhow::{anyhow, bail, Context, Result};
use reqwest::blocking::Client;
use reqwest::StatusCode;
use std::time::Duration;

/// RoboFlow's API (`--roboflow-api`, else `$ROBOFLOW_API_URL`, else this).
pub const ROBOFLOW_API: &str = "https://api.roboflow.com";
/// How often to ask again while an export is being prepared, and how many times.
const POLL_EVERY: Duration = Duration::from_secs(2);
const POLLS: u32 = 60;

#[derive(Clone, Debug)]
pub struct Config {
    pub api: String,
    pub workspace: Option<String>,
    /// Project slug override (one task only); default: derived from the pinned project name.
    pub project: Option<String>,
    pub key: Option<String>,
}

/// One export to ask for.
#[derive(Clone, Debug)]
pub struct ExportRequest {
    /// With the key, for the request.
    url: String,
    /// Without the key, for messages and the manifest.
    pub shown: String,
}

/// RoboFlow's URL slug of a project name: lowercase, runs of other characters → `-`.
pub fn project_slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// The export request for `task`, or a clear error when it cannot be made.
pub fn export_request(cfg: &Config, task: &Task) -> Result<ExportRequest> {
    let Some(pin) = &task.roboflow else {
        bail!(
            "task {} has no RoboFlow pin: its GLIP folder ({}) does not record a RoboFlow project \
             version, so only --source glip can fetch it",
            task.name,
            task.folder
        );
    };
    let Some(key) = cfg.key.as_deref().filter(|k| !k.is_empty()) else {
        bail!("--source roboflow needs an API key in ROBOFLOW_API_KEY (see roboflow.com, Settings → API keys)");
    };
    let Some(workspace) = cfg.workspace.as_deref().filter(|w| !w.is_empty()) else {
        bail!(
            "--source roboflow needs the workspace that hosts {} (--roboflow-workspace or \
             ROBOFLOW_WORKSPACE): the first part of its universe.roboflow.com/<workspace>/<project> URL",
            pin.project
        );
    };
    let project = cfg
        .project
        .clone()
        .unwrap_or_else(|| project_slug(&pin.project));
    let shown = format!(
        "{}/{}/{}/{}/coco",
        cfg.api.trim_end_matches('/'),
        encode_segment(workspace),
        encode_segment(&project),
        pin.version
    );
    Ok(ExportRequest {
        url: format!("{shown}?api_key={}", encode_segment(key)),
        shown,
    })
}

/// The largest export-API answer read (a real one is a few hundred bytes).
const MAX_ANSWER: u64 = 1 << 20;

/// Asks RoboFlow for the export and returns the zip's link (polling while it is prepared,
/// retrying server errors with backoff).
pub fn export_link(
    client: &Client,
    req: &ExportRequest,
    policy: &RetryPolicy,
    log: &dyn Fn(String),
) -> Result<String> {
    let shown = &req.shown;
    let mut failures = 0u32;
    let mut polls = 0u32;
    loop {
        let outcome = client.get(&req.url).send();
        let resp = match outcome {
            Ok(r) => r,
            Err(e) => {
                failures += 1;
                if failures > policy.retries {
                    return Err(anyhow!(e.without_url()).context(format!("GET {shown}")));
                }
                log(format!("GET {shown}: {}; retrying", e.without_url()));
                std::thread::sleep(policy.backoff.saturating_mul(1 << failures.min(6)));
                continue;
            }
        };
        let status = resp.status();
        match status {
            s if s.is_success() => {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(
                    &mut std::io::Read::take(resp, MAX_ANSWER + 1),
                    &mut bytes,
                )
                // The error's text may hold the URL, and so the key: only its kind is shown.
                .map_err(|e| anyhow!("GET {shown}: reading the answer failed ({:?})", e.kind()))?;
                if bytes.len() as u64 > MAX_ANSWER {
                    bail!("GET {shown}: the answer is larger than {MAX_ANSWER} bytes");
                }
                let body: serde_json::Value = serde_json::from_slice(&bytes)
                    .with_context(|| format!("GET {shown}: the answer is not JSON"))?;
                if let Some(link) = body.pointer("/export/link").and_then(|v| v.as_str()) {
                    return Ok(link.to_string());
                }
                polls += 1;
                if polls > POLLS {
                    bail!("GET {shown}: RoboFlow did not finish preparing the export; try again later");
                }
                log(format!("{shown}: RoboFlow is preparing the export; asking again in {} s", POLL_EVERY.as_secs()));
                std::thread::sleep(POLL_EVERY);
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => bail!(
                "GET {shown} returned HTTP {status}: RoboFlow refused the API key in ROBOFLOW_API_KEY"
            ),
            StatusCode::NOT_FOUND => bail!(
                "GET {shown} returned HTTP 404: RoboFlow has no such workspace/project/version. \
                 Check --roboflow-workspace and --roboflow-project (the slugs in the project's \
                 universe.roboflow.com URL), or use --source glip"
            ),
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                failures += 1;
                if failures > policy.retries {
                    bail!("GET {shown} returned HTTP {status} {} times", failures);
                }
                log(format!("GET {shown} returned HTTP {status}; retrying"));
                std::thread::sleep(policy.backoff.saturating_mul(1 << failures.min(6)));
            }
            s => bail!("GET {shown} returned HTTP {s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{find, Suite};

    #[test]
    fn slugs_follow_roboflow_urls() {
        assert_eq!(project_slug("BCCD"), "bccd");
        assert_eq!(project_slug("Aquarium Combined"), "aquarium-combined");
        assert_eq!(
            project_slug("North American Mushrooms"),
            "north-american-mushrooms"
        );
        assert_eq!(project_slug(" Chess  Pieces! "), "chess-pieces");
    }

    #[test]
    fn requests_need_a_pin_a_key_and_a_workspace_and_never_show_the_key() {
        let cfg = Config {
            api: "http://127.0.0.1:9/".into(),
            workspace: Some("joseph".into()),
            project: None,
            key: Some("SECRET".into()),
        };
        let bccd = find(Suite::Odinw35, "BCCD").unwrap();
        let req = export_request(&cfg, bccd).unwrap();
        assert_eq!(req.shown, "http://127.0.0.1:9/joseph/bccd/3/coco");
        assert!(req.url.ends_with("?api_key=SECRET"));
        let pets = find(Suite::Odinw35, "OxfordPets_by-breed").unwrap();
        let err = export_request(&cfg, pets).unwrap_err().to_string();
        assert!(err.contains("no RoboFlow pin"), "{err}");
        let no_key = Config {
            key: None,
            ..cfg.clone()
        };
        assert!(export_request(&no_key, bccd)
            .unwrap_err()
            .to_string()
            .contains("ROBOFLOW_API_KEY"));
        let no_ws = Config {
            workspace: None,
            ..cfg
        };
        assert!(export_request(&no_ws, bccd)
            .unwrap_err()
            .to_string()
            .contains("--roboflow-workspace"));
    }
}
