//! Every relative link and `#anchor` of README.md, the book's pages
//! (`docs/src/**/*.md`) and the deployment notes (`deploy/**/*.md`) resolves:
//! the file exists and, for an anchor into a Markdown file, a heading of that
//! file has that id, by GitHub's and mdBook's rule (lower case, whitespace to
//! `-`, punctuation other than `-` and `_` dropped, `-1`, `-2`, ... for
//! repeated headings). Links inside fenced code blocks and inline code, and
//! links with a scheme (`https:`, `mailto:`, ...) are not checked; nothing
//! goes to the network. And every page under docs/src is in SUMMARY.md.

use std::collections::{BTreeSet, HashSet};
use std::path::{Component, Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ------------------------------------------------------------ Markdown

/// `text` with the lines of fenced code blocks (```` ``` ```` or `~~~`, at
/// any indentation, so that fences inside list items count) blanked, line
/// numbers kept.
fn without_fences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut open: Option<(char, usize)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let fence = ['`', '~'].into_iter().find_map(|c| {
            let n = trimmed.chars().take_while(|&x| x == c).count();
            (n >= 3).then_some((c, n))
        });
        match (open, fence) {
            (None, Some((c, n))) => {
                // An opening backtick fence has no backtick in its info string.
                if c == '~' || !trimmed[n..].contains('`') {
                    open = Some((c, n));
                }
                out.push(String::new());
            }
            (Some((c, n)), Some((c2, n2)))
                if c == c2 && n2 >= n && trimmed[n2..].trim().is_empty() =>
            {
                open = None;
                out.push(String::new());
            }
            (Some(_), _) => out.push(String::new()),
            (None, None) => out.push(line.to_string()),
        }
    }
    out
}

/// The lines with every code span's content (and its backticks) replaced by
/// spaces. A span may run over several lines of a paragraph, not past a
/// blank line; an unmatched backtick run is literal text.
fn without_code_spans(lines: &[String]) -> Vec<String> {
    let text: Vec<char> = lines.join("\n").chars().collect();
    let mut out = text.clone();
    let run_at = |i: usize| text[i..].iter().take_while(|&&c| c == '`').count();
    let mut i = 0;
    while i < text.len() {
        if text[i] != '`' {
            i += 1;
            continue;
        }
        let n = run_at(i);
        let mut j = i + n;
        let mut close = None;
        while j < text.len() {
            if text[j] == '\n'
                && text[j + 1..]
                    .iter()
                    .take_while(|c| **c != '\n')
                    .all(|c| c.is_whitespace())
            {
                break; // a blank line ends the paragraph
            }
            if text[j] == '`' {
                let m = run_at(j);
                if m == n {
                    close = Some(j);
                    break;
                }
                j += m;
            } else {
                j += 1;
            }
        }
        match close {
            Some(c) => {
                for ch in &mut out[i..c + n] {
                    if *ch != '\n' {
                        *ch = ' ';
                    }
                }
                i = c + n;
            }
            None => i += n,
        }
    }
    out.into_iter()
        .collect::<String>()
        .split('\n')
        .map(str::to_string)
        .collect()
}

/// The text a heading shows: inline code without its backticks, links and
/// images as their text, emphasis marks and HTML tags dropped.
fn heading_text(raw: &str) -> String {
    let mut s = String::new();
    let chars: Vec<char> = raw.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '`' | '*' => i += 1,
            '!' if chars.get(i + 1) == Some(&'[') => i += 1,
            '[' => i += 1,
            ']' if chars.get(i + 1) == Some(&'(') => {
                // Skip the destination.
                let mut depth = 0;
                i += 1;
                while i < chars.len() {
                    match chars[i] {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                i += 1;
            }
            ']' => i += 1,
            '<' => match chars[i..].iter().position(|&c| c == '>') {
                Some(end) => i += end + 1,
                None => {
                    s.push('<');
                    i += 1;
                }
            },
            c => {
                s.push(c);
                i += 1;
            }
        }
    }
    s
}

/// The id GitHub and mdBook give a heading whose text shows `text`.
fn anchor(text: &str) -> String {
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c)
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// The id of a repeated heading: `-1`, `-2`, ... until unused (mdBook's
/// rule, which GitHub's matches).
fn unique(id: String, used: &mut HashSet<String>) -> String {
    if used.insert(id.clone()) {
        return id;
    }
    (1..)
        .map(|n| format!("{id}-{n}"))
        .find(|candidate| used.insert(candidate.clone()))
        .unwrap()
}

/// The values of `attr="..."` in a line of HTML.
fn attribute_values(line: &str, attr: &str) -> Vec<String> {
    let key = format!("{attr}=\"");
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find(&key) {
        let before = rest[..at].chars().next_back();
        let tail = &rest[at + key.len()..];
        let Some(end) = tail.find('"') else { break };
        if before.is_some_and(char::is_whitespace) {
            out.push(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    out
}

/// Every id a Markdown file defines: its headings' (ATX and setext, with
/// `{#id}` attributes), and HTML `id`/`name` attributes outside code.
fn anchors(text: &str) -> BTreeSet<String> {
    let lines = without_code_spans(&without_fences(text));
    let plain = without_fences(text);
    let mut used = HashSet::new();
    let mut out = BTreeSet::new();
    for (i, line) in plain.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let hashes = trimmed.chars().take_while(|&c| c == '#').count();
        let heading = if indent <= 3
            && (1..=6).contains(&hashes)
            && trimmed[hashes..]
                .chars()
                .next()
                .is_none_or(char::is_whitespace)
        {
            let body = trimmed[hashes..].trim();
            // A closing sequence of #s, after a space.
            let body = match body.trim_end_matches('#') {
                b if b.len() < body.len() && (b.is_empty() || b.ends_with(' ')) => b.trim_end(),
                _ => body,
            };
            Some(body.to_string())
        } else if i > 0 && indent <= 3 && is_setext_underline(trimmed) {
            let previous = plain[i - 1].trim();
            let starts_block = previous.starts_with(['#', '|', '>', '-', '*', '+'])
                || previous.chars().next().is_some_and(|c| c.is_ascii_digit());
            (!previous.is_empty() && !starts_block).then(|| previous.to_string())
        } else {
            None
        };
        if let Some(body) = heading {
            let (body, custom) = match body.rsplit_once("{#") {
                Some((b, id)) if id.ends_with('}') => (
                    b.trim_end().to_string(),
                    Some(id.trim_end_matches('}').to_string()),
                ),
                _ => (body, None),
            };
            let id = custom.unwrap_or_else(|| anchor(&heading_text(&body)));
            out.insert(unique(id, &mut used));
        }
        for attr in ["id", "name"] {
            out.extend(attribute_values(&lines[i], attr));
        }
    }
    out
}

fn is_setext_underline(line: &str) -> bool {
    let t = line.trim_end();
    (!t.is_empty() && t.chars().all(|c| c == '=')) || (t.len() >= 3 && t.chars().all(|c| c == '-'))
}

/// The destination of the link whose `(` is at `chars[start]`: up to the
/// balancing `)`, without a title; `<...>` destinations unwrapped.
fn destination(chars: &[char], start: usize) -> Option<String> {
    let rest: String = chars[start + 1..].iter().collect();
    let rest = rest.trim_start();
    if let Some(inner) = rest.strip_prefix('<') {
        return inner.split_once('>').map(|(d, _)| d.to_string());
    }
    let mut depth = 0usize;
    let mut out = String::new();
    for c in rest.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some(out),
            ')' => depth -= 1,
            c if c.is_whitespace() => return Some(out),
            _ => {}
        }
        out.push(c);
    }
    None
}

/// `(line number, destination)` of every link outside code: inline links
/// and images `[text](dest)`, reference definitions `[label]: dest`, HTML
/// `href`/`src`.
fn links(text: &str) -> Vec<(usize, String)> {
    let lines = without_code_spans(&without_fences(text));
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        for j in 1..chars.len() {
            if chars[j] == '(' && chars[j - 1] == ']' {
                if let Some(d) = destination(&chars, j) {
                    out.push((i + 1, d));
                }
            }
        }
        let trimmed = line.trim_start();
        if line.len() - trimmed.len() <= 3 && trimmed.starts_with('[') && !trimmed.starts_with("[^")
        {
            if let Some((_, rest)) = trimmed.split_once("]:") {
                if let Some(d) = rest.split_whitespace().next() {
                    out.push((
                        i + 1,
                        d.trim_start_matches('<').trim_end_matches('>').to_string(),
                    ));
                }
            }
        }
        for attr in ["href", "src"] {
            out.extend(attribute_values(line, attr).into_iter().map(|d| (i + 1, d)));
        }
    }
    out
}

/// `https:`, `mailto:`, ...: not ours to check.
fn has_scheme(dest: &str) -> bool {
    let Some((scheme, _)) = dest.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
}

fn decoded(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// `a/./b/../c` -> `a/c`, without touching the file system.
fn normalized(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// What is wrong with the links of `file` (whose text is `text`), each as
/// `file:line: link: reason`. `repo` is where `/...` links start.
fn problems(repo: &Path, file: &Path, text: &str) -> Vec<String> {
    let shown = file
        .strip_prefix(repo)
        .unwrap_or(file)
        .display()
        .to_string();
    let dir = file.parent().unwrap_or(repo);
    let mut out = Vec::new();
    for (line, dest) in links(text) {
        if dest.is_empty() || has_scheme(&dest) || dest.starts_with("//") {
            continue;
        }
        let (path, fragment) = match dest.split_once('#') {
            Some((p, f)) => (p, Some(decoded(f))),
            None => (dest.as_str(), None),
        };
        let path = decoded(path.split('?').next().unwrap_or(""));
        let target = if path.is_empty() {
            file.to_path_buf()
        } else if let Some(from_root) = path.strip_prefix('/') {
            normalized(&repo.join(from_root))
        } else {
            normalized(&dir.join(&path))
        };
        let problem = |reason: &str| format!("{shown}:{line}: ({dest}): {reason}");
        if !target.exists() {
            out.push(problem("no such file"));
            continue;
        }
        let Some(fragment) = fragment else { continue };
        // A directory shows its README.md; anchors of other files (source
        // lines, HTML) are not headings.
        let page = if target.is_dir() {
            target.join("README.md")
        } else {
            target.clone()
        };
        if page.extension().and_then(|e| e.to_str()) != Some("md") {
            continue;
        }
        let Ok(page_text) = std::fs::read_to_string(&page) else {
            out.push(problem("cannot read the target"));
            continue;
        };
        if fragment.is_empty() {
            continue;
        }
        let ids = anchors(&page_text);
        if !ids.contains(&fragment) {
            let close: Vec<&String> = ids
                .iter()
                .filter(|id| {
                    let head = |s: &str| s.split('-').take(2).collect::<Vec<_>>().join("-");
                    head(id) == head(&fragment)
                })
                .collect();
            out.push(problem(&format!(
                "no heading with this id in {}{}",
                page.strip_prefix(repo).unwrap_or(&page).display(),
                if close.is_empty() {
                    String::new()
                } else {
                    format!(" (similar: {close:?})")
                }
            )));
        }
    }
    out
}

// ------------------------------------------------------------ the files

/// Every `.md` file under `dir`, sorted; none when `dir` does not exist.
fn markdown_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().and_then(|e| e.to_str()) == Some("md") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let repo = root();
    let mut files = vec![repo.join("README.md")];
    files.extend(markdown_under(&repo.join("docs/src")));
    files.extend(markdown_under(&repo.join("deploy")));
    let mut found = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        checked += links(&text).len();
        found.extend(problems(&repo, file, &text));
    }
    assert!(checked > 0, "no links found in {files:?}");
    assert!(
        found.is_empty(),
        "{} broken link(s) (an anchor is the heading in lower case, spaces as -, \
         punctuation but - and _ dropped):\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn every_page_of_the_book_is_in_summary() {
    let src = root().join("docs/src");
    if !src.is_dir() {
        return; // no book yet
    }
    let summary_path = src.join("SUMMARY.md");
    let summary = std::fs::read_to_string(&summary_path)
        .unwrap_or_else(|e| panic!("docs/src exists but SUMMARY.md does not: {e}"));
    let listed: BTreeSet<PathBuf> = links(&summary)
        .into_iter()
        .filter(|(_, d)| !has_scheme(d))
        .map(|(_, d)| {
            let path = decoded(d.split('#').next().unwrap_or(""));
            normalized(&src.join(path))
        })
        .collect();
    let missing: Vec<String> = markdown_under(&src)
        .into_iter()
        .filter(|p| *p != summary_path && !listed.contains(p))
        .map(|p| p.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "pages not listed in docs/src/SUMMARY.md (mdBook leaves them out of the book):\n{}",
        missing.join("\n")
    );
}

// ------------------------------------------------------------ unit tests

#[test]
fn anchors_follow_github_and_mdbook() {
    let cases = [
        (
            "Limits and the memory they bound",
            "limits-and-the-memory-they-bound",
        ),
        (
            "Back-end services (JWT grant)",
            "back-end-services-jwt-grant",
        ),
        (
            "`--passes`: add more rustdoc passes",
            "--passes-add-more-rustdoc-passes",
        ),
        ("Open files (`ulimit -n`)", "open-files-ulimit--n"),
        ("What's `session.store_kind`?", "whats-sessionstore_kind"),
        ("  Trimmed  ", "trimmed"),
        ("Über *uns* & [mehr](x.md)", "über-uns--mehr"),
        ("Run it against DocuSign", "run-it-against-docusign"),
    ];
    for (heading, id) in cases {
        assert_eq!(anchor(&heading_text(heading)), id, "{heading}");
    }
}

#[test]
fn repeated_headings_get_numbered_ids_and_code_is_no_heading() {
    let text = "# Setup\n## Setup\n### Setup #\n```sh\n# Setup\n```\n\
                Intro\n=====\n\nOther\n-----\n## Custom {#mine}\n<a name=\"old-name\"></a>\n\
                `<a id=\"in-code\">`\n";
    let ids: Vec<String> = anchors(text).into_iter().collect();
    assert_eq!(
        ids,
        ["intro", "mine", "old-name", "other", "setup", "setup-1", "setup-2"]
    );
}

#[test]
fn links_in_code_and_with_a_scheme_are_not_checked() {
    let text = "See [a](a.md) and `[b](b.md)`, [c](<c d.md> \"title\"), ![i](img/x.png).\n\
                ```md\n[e](e.md)\n```\n``[f](f.md)`` [g](https://example.com) [h](mailto:x@y)\n\
                a `code span\nover two lines [j](j.md)` then [k](k.md#top) [l](x_(y).md)\n\
                [ref]: ref.md\n<a href=\"h.md\">h</a>\n";
    let found: Vec<String> = links(text).into_iter().map(|(_, d)| d).collect();
    assert_eq!(
        found,
        [
            "a.md",
            "c d.md",
            "img/x.png",
            "https://example.com",
            "mailto:x@y",
            "k.md#top",
            "x_(y).md",
            "ref.md",
            "h.md"
        ]
    );
    assert!(has_scheme("https://example.com") && has_scheme("mailto:x@y"));
    assert!(!has_scheme("page.md#a:b") && !has_scheme("../x.md"));
}

#[test]
fn a_broken_link_or_anchor_is_reported() {
    let dir = std::env::temp_dir().join(format!("dsgw-doc-links-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("sub/page.md"),
        "# The page\n## Run several instances\n## Run several instances\n",
    )
    .unwrap();
    let index = dir.join("index.md");
    let text = "# Index\n\
                [ok](sub/page.md#run-several-instances) [ok](sub/page.md#run-several-instances-1)\n\
                [ok](#index) [ok](sub/) [ok](/sub/page.md#the-page) [ok](sub/page.md#)\n\
                [bad](sub/missing.md) [bad](#nope)\n\
                [bad](sub/page.md#run-several-instances-2) [bad](sub/page.md#Run-several-instances)\n\
                `[ignored](nowhere.md)` [ignored](https://example.com/x.md#y)\n";
    std::fs::write(&index, text).unwrap();
    let found = problems(&dir, &index, text);
    let _ = std::fs::remove_dir_all(&dir);
    let reasons: Vec<(String, bool)> = found
        .iter()
        .map(|p| {
            let link = p.split_once(": (").unwrap().1.split_once("):").unwrap().0;
            (link.to_string(), p.contains("no such file"))
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("sub/missing.md".to_string(), true),
            ("#nope".to_string(), false),
            ("sub/page.md#run-several-instances-2".to_string(), false),
            ("sub/page.md#Run-several-instances".to_string(), false),
        ],
        "{found:#?}"
    );
    assert!(found[0].starts_with("index.md:4: "), "{}", found[0]);
}
