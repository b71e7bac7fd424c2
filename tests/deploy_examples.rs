//! The deployment examples under `deploy/` (the compose file and the
//! Kubernetes manifests) against the configuration they carry: every `DSGW_*`
//! variable they (or the Dockerfile) name is a real key, every gateway
//! configuration passes `docusign-gateway check` with the environment of its
//! deployment, and the pieces agree with each other. No Docker, no cluster,
//! no network: deploy/README.md says what this does not cover.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use docusign_gateway::config::{Config, RawConfig, ENV_PREFIX};
use docusign_gateway::util::paths::{HEALTH_PATH, READY_PATH};
use serde::Deserialize;
use serde_yaml::Value;

/// Where the image's entrypoint reads its configuration.
const IMAGE_CONFIG: &str = "/etc/docusign-gateway/gateway.toml";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

// ------------------------------------------------------------ DSGW_* names

/// Every variable the configuration reads: `DSGW_` + `<section>_<key>`, for
/// every key of the configuration structs (docs/src/configuration.md's reference table is
/// checked against the same list).
fn known_variables() -> BTreeSet<String> {
    RawConfig::defaults()
        .into_iter()
        .map(|(key, _)| format!("{ENV_PREFIX}{}", key.replace('.', "_").to_ascii_uppercase()))
        .collect()
}

/// The `DSGW_*` names written in `text`, with their line numbers. A family
/// (`DSGW_SESSION_*`, `DSGW_<SECTION>_<KEY>`) is no name.
fn mentioned_variables(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut rest = line;
        let mut offset = 0;
        while let Some(at) = rest.find(ENV_PREFIX) {
            let start = offset + at;
            let before = line[..start].chars().next_back();
            let tail = &line[start + ENV_PREFIX.len()..];
            let len = tail
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            let name = &tail[..len];
            let part_of_a_word = before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            if !part_of_a_word && !name.is_empty() && !name.ends_with('_') {
                out.push((i + 1, format!("{ENV_PREFIX}{name}")));
            }
            offset = start + ENV_PREFIX.len() + len;
            rest = &line[offset..];
        }
    }
    out
}

/// `line N: NAME` for every name in `text` that is not a configuration key.
fn unknown_variables(text: &str, known: &BTreeSet<String>) -> Vec<String> {
    mentioned_variables(text)
        .into_iter()
        .filter(|(_, name)| !known.contains(name))
        .map(|(line, name)| format!("line {line}: {name}"))
        .collect()
}

/// Every file under `dir`, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_dsgw_variable_in_the_examples_is_a_configuration_key() {
    let known = known_variables();
    let mut files = files_under(&root().join("deploy"));
    files.push(root().join("Dockerfile"));
    let mut bad = Vec::new();
    let mut seen = 0;
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        seen += mentioned_variables(&text).len();
        let rel = path.strip_prefix(root()).unwrap().display().to_string();
        bad.extend(
            unknown_variables(&text, &known)
                .into_iter()
                .map(|e| format!("{rel} {e}")),
        );
    }
    assert!(seen > 10, "the examples name only {seen} DSGW_* variables");
    assert!(
        bad.is_empty(),
        "not configuration keys (docs/src/configuration.md):\n{}",
        bad.join("\n")
    );
}

#[test]
fn a_misspelt_variable_is_reported_and_a_family_is_not() {
    let known = known_variables();
    assert!(known.contains("DSGW_SESSION_SECRET"));
    assert!(known.contains("DSGW_REDIS_URL"));
    let text = "environment:\n  DSGW_SESSIONS_SECRET: x\n  DSGW_SESSION_SECRET: y\n\
                # DSGW_SESSION_* and DSGW_<SECTION>_<KEY>; X_DSGW_NOPE\n  - DSGW_REDIS_URI=z\n";
    assert_eq!(
        unknown_variables(text, &known),
        vec![
            "line 2: DSGW_SESSIONS_SECRET".to_string(),
            "line 5: DSGW_REDIS_URI".to_string()
        ]
    );
}

// ------------------------------------------------------------ the image

/// The `ENV` of the Dockerfile's last stage (the production image).
fn image_env() -> Vec<(String, String)> {
    let dockerfile = read("Dockerfile");
    let last_stage = dockerfile
        .rsplit_once("\nFROM ")
        .map(|(_, s)| s)
        .expect("a FROM line");
    // Instructions with their continuation lines joined.
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in last_stage.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    let mut env = Vec::new();
    for instruction in instructions {
        let Some(pairs) = instruction.trim().strip_prefix("ENV ") else {
            continue;
        };
        for pair in pairs.split_whitespace() {
            let (k, v) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("ENV {pair}: expected KEY=VALUE"));
            env.push((k.to_string(), v.trim_matches('"').to_string()));
        }
    }
    env
}

/// `(name, is the last stage)` of every `FROM ... AS name` of the Dockerfile.
fn dockerfile_stages() -> Vec<(String, bool)> {
    let dockerfile = read("Dockerfile");
    let froms: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    froms
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let as_at = words.iter().position(|w| w.eq_ignore_ascii_case("AS"))?;
            Some((words.get(as_at + 1)?.to_string(), i + 1 == froms.len()))
        })
        .collect()
}

#[test]
fn the_production_image_is_the_dockerfiles_default_target() {
    let stages = dockerfile_stages();
    assert!(
        stages.contains(&("gateway".to_string(), true)),
        "the last stage (docker build's default) must be `gateway`: {stages:?}"
    );
    assert!(stages.iter().any(|(s, _)| s == "fake"), "{stages:?}");
    let env: BTreeMap<String, String> = image_env().into_iter().collect();
    assert_eq!(
        env.get("DSGW_SERVER_LISTEN").map(String::as_str),
        Some("0.0.0.0:8080")
    );
}

// ------------------------------------------------------------ check

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// Runs `docusign-gateway check` on `config` with exactly `env` (nothing of
/// this process's environment). The upgrade socket goes into a private
/// scratch directory: the image's /run/docusign-gateway is not this
/// machine's. Panics, with check's output, unless it exits 0.
fn check(what: &str, config: &str, env: &[(String, String)]) {
    let n = RUNS.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("dsgw-deploy-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = dir.join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let sock = dir.join("upgrade.sock").display().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_docusign-gateway"))
        .arg("check")
        .arg("--config")
        .arg(&path)
        .env_clear()
        .envs(
            env.iter()
                .filter(|(k, _)| k != "DSGW_SERVER_UPGRADE_SOCK")
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .env("DSGW_SERVER_UPGRADE_SOCK", &sock)
        .stdin(Stdio::null())
        .output()
        .expect("run docusign-gateway check");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{what}: `docusign-gateway check` failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The same configuration, in-process, to compare it with the rest of the
/// deployment.
fn config(what: &str, text: &str, env: &[(String, String)]) -> Config {
    Config::from_toml_str(text, env.iter().cloned()).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// `base` with `over` applied: a later value of a name wins.
fn merged(base: Vec<(String, String)>, over: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut map: BTreeMap<String, String> = base.into_iter().collect();
    map.extend(over);
    map.into_iter().collect()
}

// ------------------------------------------------------------ YAML helpers

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, key| v.get(*key))
}

/// A scalar as its text (compose and Kubernetes hand every value over as one).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("expected a scalar, got {other:?}"),
    }
}

fn str_at(v: &Value, path: &[&str]) -> Option<String> {
    at(v, path).map(text)
}

fn list(v: Option<&Value>) -> Vec<Value> {
    v.and_then(Value::as_sequence).cloned().unwrap_or_default()
}

/// The string pairs of a mapping (`matchLabels`, `stringData`, ...).
fn pairs(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_mapping)
        .map(|m| m.iter().map(|(k, v)| (text(k), text(v))).collect())
        .unwrap_or_default()
}

/// `sub` is contained in `labels`, and not empty.
fn selects(sub: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !sub.is_empty() && sub.iter().all(|(k, v)| labels.get(k) == Some(v))
}

// ------------------------------------------------------------ compose

fn compose() -> Value {
    let mut v: Value =
        serde_yaml::from_str(&read("deploy/docker-compose.yml")).expect("docker-compose.yml");
    v.apply_merge().expect("merge keys");
    v
}

/// A compose service's `environment`, mapping or `KEY=VALUE` list.
fn compose_env(service: &Value) -> Vec<(String, String)> {
    match service.get("environment") {
        None => Vec::new(),
        Some(Value::Mapping(m)) => m.iter().map(|(k, v)| (text(k), text(v))).collect(),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|i| {
                let item = text(i);
                let (k, v) = item.split_once('=').unwrap_or((&item, ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
        Some(other) => panic!("environment: {other:?}"),
    }
}

/// The value after `flag` in a command line.
fn flag_values(args: &[String], flag: &str) -> Vec<String> {
    args.windows(2)
        .filter(|w| w[0] == flag)
        .map(|w| w[1].clone())
        .collect()
}

fn port_of(authority: &str) -> u16 {
    authority
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {authority}"))
}

#[test]
fn the_compose_gateways_pass_check_and_agree_with_nginx_and_the_fake() {
    let compose = compose();
    let services = compose
        .get("services")
        .and_then(Value::as_mapping)
        .expect("services");
    let targets = dockerfile_stages();
    let mut gateways = Vec::new();
    let mut fakes = Vec::new();
    for (name, service) in services {
        let name = text(name);
        let Some(target) = str_at(service, &["build", "target"]) else {
            continue;
        };
        assert!(
            targets.iter().any(|(t, _)| *t == target),
            "{name}: the Dockerfile has no stage {target}"
        );
        assert_eq!(
            str_at(service, &["build", "context"]).as_deref(),
            Some(".."),
            "{name}: built from the repository"
        );
        match target.as_str() {
            "gateway" => gateways.push((name, service.clone())),
            "fake" => fakes.push((name, service.clone())),
            other => panic!("{name}: unexpected target {other}"),
        }
    }
    assert!(gateways.len() >= 2, "two gateway instances: {gateways:?}");
    assert_eq!(fakes.len(), 1, "one fake DocuSign");

    let mut checked: Vec<(String, Config, BTreeMap<String, String>)> = Vec::new();
    for (name, service) in &gateways {
        let mounted: Vec<String> = list(service.get("volumes"))
            .iter()
            .map(text)
            .filter_map(|v| {
                let (src, rest) = v.split_once(':')?;
                (rest == IMAGE_CONFIG || rest.starts_with(&format!("{IMAGE_CONFIG}:")))
                    .then(|| src.to_string())
            })
            .collect();
        assert_eq!(mounted.len(), 1, "{name}: one file at {IMAGE_CONFIG}");
        let file = Path::new("deploy").join(mounted[0].trim_start_matches("./"));
        let file_text = read(&file.display().to_string());
        let env = merged(image_env(), compose_env(service));
        let what = format!("compose service {name} ({})", file.display());
        check(&what, &file_text, &env);
        let cfg = config(&what, &file_text, &env);
        assert!(cfg.redis.is_some(), "{what}: instances share Redis");
        checked.push((name.clone(), cfg, env.into_iter().collect()));
    }

    // docs/src/production.md, "Run several instances": the same secret, Redis, prefix and
    // public_url everywhere; each its own listen and metrics address.
    let (first_name, first, first_env) = &checked[0];
    let mut listens = BTreeSet::new();
    let mut metrics = BTreeSet::new();
    for (name, cfg, env) in &checked {
        for var in [
            "DSGW_SESSION_SECRET",
            "DSGW_DOCUSIGN_CLIENT_SECRET",
            "DSGW_REDIS_URL",
        ] {
            assert_eq!(
                env.get(var),
                first_env.get(var),
                "{name} and {first_name}: {var}"
            );
        }
        assert_eq!(cfg.server.public_url, first.server.public_url, "{name}");
        assert_eq!(
            cfg.redis.as_ref().map(|r| r.key_prefix.clone()),
            first.redis.as_ref().map(|r| r.key_prefix.clone()),
            "{name}"
        );
        assert!(
            listens.insert(cfg.server.listen.to_string()),
            "{name}: listen"
        );
        assert!(metrics.insert(cfg.server.metrics_listen), "{name}: metrics");
    }

    // nginx balances exactly the gateways, on the port of public_url, which
    // its service publishes.
    let nginx = read("deploy/nginx.conf");
    let upstream_block = nginx
        .split_once("upstream ")
        .and_then(|(_, b)| b.split_once('}'))
        .map(|(b, _)| b)
        .expect("an upstream block");
    let upstreams: BTreeSet<String> = upstream_block
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("server "))
        .map(|l| l.split([' ', ';']).next().unwrap_or("").to_string())
        .collect();
    assert_eq!(upstreams, listens, "nginx's upstreams are the gateways");
    let public_port = first.server.public_url.port_or_known_default().unwrap();
    let nginx_listen: Vec<u16> = nginx
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("listen "))
        .map(|l| port_of(&format!(":{}", l.trim_end_matches(';'))))
        .collect();
    assert_eq!(
        nginx_listen,
        vec![public_port],
        "nginx listens on public_url's port"
    );
    let lb_name = str_at(&gateways[0].1, &["network_mode"])
        .and_then(|m| m.strip_prefix("service:").map(str::to_string))
        .expect("the gateways share a service's network namespace");
    let lb = services
        .get(lb_name.as_str())
        .expect("the namespace's service");
    let published: Vec<u16> = list(lb.get("ports"))
        .iter()
        .map(|p| port_of(&text(p)))
        .collect();
    assert!(
        published.contains(&public_port),
        "{lb_name} publishes {public_port}: {published:?}"
    );

    // The fake DocuSign: the gateways' client, redirect URI, account server
    // port and REST hosts; and its command line parses.
    let (fake_name, fake) = &fakes[0];
    let args: Vec<String> = list(fake.get("command")).iter().map(text).collect();
    let fake_env: BTreeMap<String, String> = compose_env(fake).into_iter().collect();
    assert_eq!(
        flag_values(&args, "--client-id"),
        vec![first.docusign.client_id.clone()],
        "{fake_name}: client id"
    );
    assert_eq!(
        fake_env.get("FAKE_DOCUSIGN_CLIENT_SECRET"),
        first_env.get("DSGW_DOCUSIGN_CLIENT_SECRET"),
        "{fake_name}: the client secret"
    );
    assert_eq!(
        flag_values(&args, "--redirect-uri"),
        vec![first.docusign.redirect_uri.to_string()],
        "{fake_name}: the redirect URI is public_url + callback_path"
    );
    let auth_port = first.docusign.auth_server.port_or_known_default().unwrap();
    assert_eq!(
        flag_values(&args, "--listen")
            .iter()
            .map(|l| port_of(l))
            .collect::<Vec<_>>(),
        vec![auth_port],
        "{fake_name}: the account server is auth_server"
    );
    assert!(
        published.contains(&auth_port),
        "{lb_name} publishes the account server's {auth_port} for the browser"
    );
    assert_eq!(
        str_at(fake, &["network_mode"]),
        str_at(&gateways[0].1, &["network_mode"]),
        "{fake_name} shares the gateways' namespace"
    );
    let file: toml::Table = read("deploy/gateway.toml").parse().unwrap();
    let allowed: Vec<String> = file["docusign"]["allowed_api_hosts"]
        .as_array()
        .expect("allowed_api_hosts")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let rest_hosts = flag_values(&args, "--rest-host");
    assert!(!rest_hosts.is_empty());
    for host in &rest_hosts {
        assert!(allowed.contains(host), "allowed_api_hosts lacks {host}");
    }
    let help = Command::new(env!("CARGO_BIN_EXE_docusign-gateway"))
        .arg("fake-docusign")
        .args(&args)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        help.status.success(),
        "{fake_name}'s command does not parse: {}",
        String::from_utf8_lossy(&help.stderr)
    );
}

// ------------------------------------------------------------ Kubernetes

/// Every document of every manifest under deploy/kubernetes, with its file.
fn manifests() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for path in files_under(&root().join("deploy/kubernetes")) {
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).unwrap_or_else(|e| panic!("{name}: {e}"));
            if !v.is_null() {
                out.push((name.clone(), v));
            }
        }
    }
    out
}

fn of_kind<'a>(all: &'a [(String, Value)], kind: &str) -> Vec<&'a Value> {
    all.iter()
        .filter(|(_, v)| str_at(v, &["kind"]).as_deref() == Some(kind))
        .map(|(_, v)| v)
        .collect()
}

fn named<'a>(all: &'a [(String, Value)], kind: &str, name: &str) -> &'a Value {
    of_kind(all, kind)
        .into_iter()
        .find(|v| str_at(v, &["metadata", "name"]).as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} named {name}"))
}

/// A Secret's values, from `stringData` or (base64) `data`.
fn secret_values(secret: &Value) -> BTreeMap<String, String> {
    let mut values = pairs(secret.get("stringData"));
    for (k, v) in pairs(secret.get("data")) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v.as_bytes())
            .unwrap_or_else(|e| panic!("Secret data {k}: {e}"));
        values.insert(k, String::from_utf8(bytes).unwrap());
    }
    values
}

/// A container's environment, with secretKeyRef, configMapKeyRef and
/// envFrom resolved against the manifests.
fn container_env(all: &[(String, Value)], container: &Value) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for from in list(container.get("envFrom")) {
        if let Some(name) = str_at(&from, &["secretRef", "name"]) {
            env.extend(secret_values(named(all, "Secret", &name)));
        }
        if let Some(name) = str_at(&from, &["configMapRef", "name"]) {
            env.extend(pairs(named(all, "ConfigMap", &name).get("data")));
        }
    }
    for item in list(container.get("env")) {
        let name = str_at(&item, &["name"]).expect("env name");
        let value = if let Some(v) = str_at(&item, &["value"]) {
            v
        } else if let Some(r) = at(&item, &["valueFrom", "secretKeyRef"]) {
            let secret = named(all, "Secret", &str_at(r, &["name"]).unwrap());
            let key = str_at(r, &["key"]).unwrap();
            secret_values(secret)
                .remove(&key)
                .unwrap_or_else(|| panic!("{name}: the Secret has no {key}"))
        } else if let Some(r) = at(&item, &["valueFrom", "configMapKeyRef"]) {
            let map = named(all, "ConfigMap", &str_at(r, &["name"]).unwrap());
            let key = str_at(r, &["key"]).unwrap();
            pairs(map.get("data"))
                .remove(&key)
                .unwrap_or_else(|| panic!("{name}: the ConfigMap has no {key}"))
        } else {
            panic!("env {name}: no value");
        };
        env.push((name, value));
    }
    env
}

/// The text of the file the container reads at [`IMAGE_CONFIG`]: a ConfigMap
/// mounted as its directory, or its one key through `subPath`.
fn container_config(all: &[(String, Value)], pod: &Value, container: &Value) -> String {
    let (dir, file) = IMAGE_CONFIG.rsplit_once('/').unwrap();
    for mount in list(container.get("volumeMounts")) {
        let path = str_at(&mount, &["mountPath"]).unwrap_or_default();
        let key = match (path.as_str(), str_at(&mount, &["subPath"])) {
            (p, None) if p == dir => file.to_string(),
            (p, Some(sub)) if p == IMAGE_CONFIG => sub,
            _ => continue,
        };
        let volume_name = str_at(&mount, &["name"]).unwrap();
        let volume = list(pod.get("volumes"))
            .into_iter()
            .find(|v| str_at(v, &["name"]).as_deref() == Some(volume_name.as_str()))
            .unwrap_or_else(|| panic!("no volume {volume_name}"));
        let map_name = str_at(&volume, &["configMap", "name"])
            .unwrap_or_else(|| panic!("volume {volume_name} is not a ConfigMap"));
        return pairs(named(all, "ConfigMap", &map_name).get("data"))
            .remove(&key)
            .unwrap_or_else(|| panic!("ConfigMap {map_name} has no {key}"));
    }
    panic!("nothing mounted at {IMAGE_CONFIG}");
}

/// The container port a probe or Service names (by name or number).
fn container_port(container: &Value, port: &Value) -> u16 {
    let wanted = text(port);
    list(container.get("ports"))
        .iter()
        .find(|p| {
            str_at(p, &["name"]).as_deref() == Some(wanted.as_str())
                || str_at(p, &["containerPort"]).as_deref() == Some(wanted.as_str())
        })
        .and_then(|p| str_at(p, &["containerPort"]))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the container has no port {wanted}"))
}

#[test]
fn kustomization_lists_every_manifest() {
    let all = manifests();
    let kustomization = all
        .iter()
        .find(|(f, _)| f == "kustomization.yaml")
        .map(|(_, v)| v)
        .expect("kustomization.yaml");
    let listed: BTreeSet<String> = list(kustomization.get("resources"))
        .iter()
        .map(text)
        .collect();
    let files: BTreeSet<String> = all
        .iter()
        .map(|(f, _)| f.clone())
        .filter(|f| f != "kustomization.yaml")
        .collect();
    assert_eq!(listed, files);
}

#[test]
fn the_kubernetes_deployment_passes_check_and_its_pieces_fit() {
    let all = manifests();
    let deployments = of_kind(&all, "Deployment");
    assert_eq!(deployments.len(), 1);
    let deployment = deployments[0];
    assert_eq!(
        str_at(deployment, &["spec", "replicas"]).as_deref(),
        Some("2")
    );
    let pod = at(deployment, &["spec", "template", "spec"]).expect("pod spec");
    let labels = pairs(at(deployment, &["spec", "template", "metadata", "labels"]));
    assert!(selects(
        &pairs(at(deployment, &["spec", "selector", "matchLabels"])),
        &labels
    ));
    let containers = list(pod.get("containers"));
    assert_eq!(containers.len(), 1);
    let container = &containers[0];

    let env = merged(image_env(), container_env(&all, container));
    let file = container_config(&all, pod, container);
    check(
        "deploy/kubernetes (ConfigMap + Deployment env + Secret)",
        &file,
        &env,
    );
    let cfg = config("deploy/kubernetes", &file, &env);
    assert!(
        cfg.redis.is_some(),
        "two replicas share sessions through Redis"
    );

    // Ports: the configuration's, named.
    assert_eq!(
        container_port(container, &Value::String("http".into())),
        cfg.server.listen.port()
    );
    assert_eq!(
        Some(container_port(container, &Value::String("metrics".into()))),
        cfg.server.metrics_listen.map(|a| a.port())
    );

    // Probes: the gateway's own paths, on its listener.
    for (probe, path) in [
        ("readinessProbe", READY_PATH),
        ("livenessProbe", HEALTH_PATH),
    ] {
        let get = at(container, &[probe, "httpGet"]).unwrap_or_else(|| panic!("{probe}"));
        assert_eq!(str_at(get, &["path"]).as_deref(), Some(path), "{probe}");
        let port = get.get("port").unwrap_or_else(|| panic!("{probe} port"));
        assert_eq!(
            container_port(container, port),
            cfg.server.listen.port(),
            "{probe}"
        );
    }

    for kind in ["requests", "limits"] {
        let r = pairs(at(container, &["resources", kind]));
        assert!(r.contains_key("memory"), "resources.{kind}.memory");
    }
    assert!(pairs(at(container, &["resources", "requests"])).contains_key("cpu"));

    // The grace period covers preStop and the gateway's own drain.
    let termination: u64 = str_at(pod, &["terminationGracePeriodSeconds"])
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    assert!(termination > cfg.server.grace_period.as_secs() + 5);

    for service in of_kind(&all, "Service") {
        assert!(selects(&pairs(at(service, &["spec", "selector"])), &labels));
        for port in list(at(service, &["spec", "ports"])) {
            let target = port.get("targetPort").expect("targetPort");
            container_port(container, target);
        }
    }
    let pdbs = of_kind(&all, "PodDisruptionBudget");
    assert_eq!(pdbs.len(), 1);
    assert!(selects(
        &pairs(at(pdbs[0], &["spec", "selector", "matchLabels"])),
        &labels
    ));
    assert_eq!(of_kind(&all, "Secret").len(), 1);
}
