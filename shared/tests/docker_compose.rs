//! No Docker engine runs here, so the compose stack is checked as files: the YAML parses,
//! every service it references exists, workers can be scaled, Redis keeps an AOF, mounted
//! paths exist in the repository, Prometheus scrapes the ports the config listens on, Grafana
//! reads the dashboards where provisioning says, its history data source and the schedulers'
//! `[history]` reach the compose PostgreSQL, and the config loads for both binaries.

use std::path::{Path, PathBuf};

use sluice_shared::config::{Config, Role};
use yaml_rust2::{Yaml, YamlLoader};

fn docker() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker")
}

fn yaml(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())).remove(0)
}

fn strings(y: &Yaml) -> Vec<String> {
    y.as_vec().map(|v| v.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default()
}

fn port(listen: &str) -> String {
    listen.rsplit_once(':').unwrap().1.to_string()
}

#[test]
fn the_compose_stack_is_consistent() {
    let compose = yaml(&docker().join("docker-compose.yml"));
    let services = compose["services"].as_hash().expect("services");
    let names: Vec<String> = services.keys().filter_map(|k| k.as_str().map(String::from)).collect();
    for wanted in ["redis", "sink", "scheduler", "worker", "prometheus", "grafana"] {
        assert!(names.contains(&wanted.to_string()), "service {wanted} missing: {names:?}");
    }
    for (name, service) in services {
        for dep in strings(&service["depends_on"]) {
            assert!(names.contains(&dep), "{name:?} depends on unknown service {dep}");
        }
        // Bind mounts point at files in the repository (paths relative to docker/).
        for volume in strings(&service["volumes"]) {
            let source = volume.split(':').next().unwrap();
            if source.starts_with('.') {
                assert!(docker().join(source).exists(), "{name:?} mounts missing {source}");
            }
        }
        for p in strings(&service["ports"]) {
            assert!(p.starts_with("127.0.0.1:"), "{name:?} publishes {p} beyond loopback");
        }
    }
    let worker = &compose["services"]["worker"];
    assert!(worker["container_name"].is_badvalue() && worker["ports"].is_badvalue(), "workers must scale");
    let redis = strings(&compose["services"]["redis"]["command"]).join(" ");
    assert!(redis.contains("--appendonly yes") && redis.contains("--appendfsync everysec"), "{redis}");

    // The config the image ships loads for both binaries, and the ports agree.
    let text = std::fs::read_to_string(docker().join("sluice.toml")).unwrap();
    let scheduler = Config::from_toml(&text, Role::Scheduler).expect("scheduler config");
    Config::from_toml(&text, Role::Worker).expect("worker config");
    let published = strings(&compose["services"]["scheduler"]["ports"]);
    for listen in [&scheduler.api.listen, &scheduler.public.as_ref().unwrap().listen] {
        let p = port(listen);
        assert!(published.iter().any(|m| m.ends_with(&format!(":{p}"))), "{listen} not published: {published:?}");
    }
    assert_eq!(scheduler.smtp.relays[0].host, "sink");
    assert!(scheduler.redis.url.starts_with("redis://redis:"));

    // Prometheus scrapes the scheduler and the workers on metrics.listen.
    let prometheus = yaml(&docker().join("prometheus.yml"));
    let metrics_port = port(&scheduler.metrics.listen);
    let mut scraped = Vec::new();
    for job in prometheus["scrape_configs"].as_vec().unwrap() {
        for s in job["static_configs"].as_vec().into_iter().flatten() {
            scraped.extend(strings(&s["targets"]));
        }
        for d in job["dns_sd_configs"].as_vec().into_iter().flatten() {
            assert_eq!(d["port"].as_i64().unwrap().to_string(), metrics_port);
            scraped.extend(strings(&d["names"]).into_iter().map(|n| format!("{n}:{metrics_port}")));
        }
    }
    for target in ["scheduler", "worker"] {
        assert!(scraped.contains(&format!("{target}:{metrics_port}")), "{target} not scraped: {scraped:?}");
    }

    // Grafana: the dashboards land where provisioning looks, and the data source is Prometheus.
    let grafana = strings(&compose["services"]["grafana"]["volumes"]);
    let provisioning = yaml(&docker().join("../grafana/provisioning/dashboards/sluice.yml"));
    let path = provisioning["providers"][0]["options"]["path"].as_str().unwrap();
    assert!(
        grafana.iter().any(|v| v.starts_with("../grafana/dashboards:") && v.contains(&format!(":{path}"))),
        "{grafana:?}"
    );
    let datasources = yaml(&docker().join("../grafana/provisioning/datasources/sluice.yml"));
    assert_eq!(datasources["datasources"][0]["url"].as_str(), Some("http://prometheus:9090"));
    // The history's data source reaches the compose PostgreSQL, as the dashboards name it.
    let history = &datasources["datasources"][1];
    assert_eq!(history["uid"].as_str(), Some("sluice-history"));
    let host = history["url"].as_str().unwrap().split(':').next().unwrap().to_string();
    assert!(names.contains(&host), "the history data source points at {host}, not a service");
    let config = Config::load(Some(&docker().join("sluice.toml")), Role::Scheduler).unwrap();
    assert!(
        config.history.url.as_deref().is_some_and(|u| u.contains(&format!("@{host}:"))),
        "{:?}",
        config.history.url
    );
}
