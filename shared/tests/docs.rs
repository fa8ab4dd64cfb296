//! The docs stay walkable: every repository path they name exists, every link between pages
//! lands on a page and a heading that exist, and no page grows past 400 lines.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// README.md and every page under docs/, as (path relative to the root, text).
fn pages() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut paths = vec![root().join("README.md")];
    walk(&root().join("docs"), &mut paths);
    paths
        .into_iter()
        .map(|p| (p.strip_prefix(root()).unwrap().to_path_buf(), std::fs::read_to_string(&p).unwrap()))
        .collect()
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    text.lines().filter_map(|l| l.strip_prefix('#')).map(|h| anchor(h.trim_start_matches('#').trim())).collect()
}

#[test]
fn every_repository_path_named_in_the_docs_exists() {
    let named = regex::Regex::new(
        r"`((?:shared|scheduler|worker|cli|testkit|e2e|fuzz|scripts|docker|grafana|docs)/[A-Za-z0-9_./-]+)`",
    )
    .unwrap();
    let mut missing = Vec::new();
    for (page, text) in pages() {
        for m in named.captures_iter(&text) {
            let path = m[1].trim_end_matches(['.', ',']);
            if !root().join(path).exists() {
                missing.push(format!("{}: {path}", page.display()));
            }
        }
    }
    assert!(missing.is_empty(), "named but not in the repository: {missing:#?}");
}

#[test]
fn every_link_between_pages_lands_on_a_heading_that_exists() {
    let link = regex::Regex::new(r"\]\(([^)#\s]*)(?:#([^)\s]+))?\)").unwrap();
    let mut broken = Vec::new();
    for (page, text) in pages() {
        for m in link.captures_iter(&text) {
            let target = m.get(1).map_or("", |t| t.as_str());
            if target.starts_with("http") {
                continue;
            }
            let file = if target.is_empty() { page.clone() } else { page.parent().unwrap().join(target) };
            let Ok(body) = std::fs::read_to_string(root().join(&file)) else {
                broken.push(format!("{}: {target} does not exist", page.display()));
                continue;
            };
            if let Some(fragment) = m.get(2)
                && !anchors(&body).contains(&fragment.as_str().to_string())
            {
                broken.push(format!("{}: {target}#{} has no such heading", page.display(), fragment.as_str()));
            }
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
}

#[test]
fn no_page_is_longer_than_400_lines() {
    for (page, text) in pages() {
        assert!(text.lines().count() <= 400, "{} has {} lines", page.display(), text.lines().count());
    }
}

#[test]
fn anchors_follow_github() {
    assert_eq!(anchor("Public listener (no auth)"), "public-listener-no-auth");
    assert_eq!(anchor("Events (scope `campaigns:read`)"), "events-scope-campaignsread");
}
