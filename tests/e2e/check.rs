//! `wirewatch check`: a summary for a good file; for a broken one, exit 2 and every
//! problem with its file, line and column.

use crate::helpers::{TestDir, stderr, stdout};

const GOOD: &str = r#"
[daemon]
state_dir = "state"
listen = ""

[poll]
schedule = "*/5 * * * *"
allow_private_networks = true

[[feeds]]
name = "wire"
url = "http://127.0.0.1:1/rss"
tags = ["iran"]

[[watchlists]]
name = "iran-china"
terms = ["Iran", "China", "SCO", "JCPOA"]
query = '(Iran OR JCPOA) AND (China OR SCO)'
feeds = ["tag:iran"]
webhooks = ["siem"]

[[webhooks]]
name = "siem"
url = "http://127.0.0.1:1/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_config_prints_a_summary_and_exits_0() {
    let dir = TestDir::new();
    dir.write_config(GOOD);
    let out = dir.wirewatch(&["check"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("database: SQLite, "),
        "the backend in use: {text}"
    );
    assert!(text.contains("feeds: 1"), "{text}");
    assert!(
        text.contains("retention: items 30d, matches 365d, deliveries 30d"),
        "{text}"
    );
    assert!(text.contains("iran-china on 1 feeds -> [siem]"), "{text}");
    assert!(text.contains("siem (Json, signed)"), "{text}");
    assert!(!text.contains("whsec_"), "the secret is never printed");
}

#[tokio::test]
async fn check_names_a_postgresql_database_and_the_node_without_the_password() {
    let dir = TestDir::new();
    let url_file = dir.dir.path().join("database-url");
    std::fs::write(
        &url_file,
        "postgres://wire:s3cret-pw@db.example:5433/wirewatch\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &url_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let config = GOOD.replacen(
        "[daemon]\n",
        &format!("[daemon]\ndatabase_url_file = \"{}\"\n", url_file.display()),
        1,
    );
    dir.write_config(&format!(
        "{config}\n[cluster]\nnode = \"wire-2\"\nlease = \"30s\"\n"
    ));
    let out = dir.wirewatch(&["check"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("database: PostgreSQL, postgres://wire@db.example:5433/wirewatch\n"),
        "{text}"
    );
    assert!(text.contains("cluster: node wire-2, lease 30s"), "{text}");
    assert!(
        !text.contains("s3cret"),
        "the password is never printed: {text}"
    );
}

/// Each case: what is broken, the replacement applied to GOOD, and the expected
/// `line:column` and message fragment. Each broken value must give exactly one error:
/// a bad webhook must not also make the watch-lists naming it fail.
const BROKEN: &[(&str, &str, &str, &str, &str)] = &[
    (
        "toml syntax",
        "tags = [\"iran\"]",
        "tags = [\"iran\"",
        "15:1",
        "missing comma between array elements",
    ),
    (
        "unknown key",
        "listen = \"\"",
        "listen = \"\"\nlisten_port = 9",
        "5:1",
        "unknown field `listen_port`",
    ),
    (
        "bad cron",
        "schedule = \"*/5 * * * *\"",
        "schedule = \"*/5 * * *\"",
        "7:12",
        "not a crontab expression",
    ),
    (
        "bad interval",
        "schedule = \"*/5 * * * *\"",
        "schedule = \"every soon\"",
        "7:12",
        "bad interval",
    ),
    (
        "feed url scheme",
        "url = \"http://127.0.0.1:1/rss\"",
        "url = \"ftp://127.0.0.1/rss\"",
        "12:7",
        "http or https",
    ),
    (
        "feed url garbage",
        "url = \"http://127.0.0.1:1/rss\"",
        "url = \"not a url\"",
        "12:7",
        "is not a URL",
    ),
    (
        "duplicate feed",
        "tags = [\"iran\"]",
        "tags = [\"iran\"]\n\n[[feeds]]\nname = \"wire\"\nurl = \"http://127.0.0.1:2/rss\"",
        "16:8",
        "duplicate feed name `wire`",
    ),
    (
        "unknown webhook",
        "webhooks = [\"siem\"]",
        "webhooks = [\"siem\", \"slack\"]",
        "20:21",
        "no webhook is named `slack`",
    ),
    (
        "unknown feed tag",
        "feeds = [\"tag:iran\"]",
        "feeds = [\"tag:irn\"]",
        "19:10",
        "no feed has the tag `irn`",
    ),
    (
        "unknown feed name",
        "feeds = [\"tag:iran\"]",
        "feeds = [\"reuters\"]",
        "19:10",
        "no feed is named `reuters`",
    ),
    (
        "query syntax",
        "query = '(Iran OR JCPOA) AND (China OR SCO)'",
        "query = '(Iran OR JCPOA AND (China OR SCO)'",
        "18:10",
        "query at byte 0: unclosed `(`",
    ),
    (
        "secret form",
        "secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
        "secret = \"hunter2\"",
        "25:10",
        "whsec_",
    ),
    (
        "secret file missing",
        "secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
        "secret_file = \"missing.key\"",
        "25:15",
        "cannot be read",
    ),
    (
        "two secrets",
        "secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
        "secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nsecret_env = \"X\"",
        "26:14",
        "`secret` and `secret_env` both give the signing secret: keep one",
    ),
    (
        "secret file that is a device",
        "secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
        "secret_file = \"/dev/zero\"",
        "25:15",
        "secret_file `/dev/zero` cannot be read: it is not a regular file",
    ),
    (
        "header that overrides the protocol",
        "secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
        "headers = { \"Content-Length\" = \"1\" }",
        "25:32",
        "headers.Content-Length: `Content-Length` is a protocol header that wirewatch sets itself",
    ),
    (
        "header that forges the signature",
        "secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
        "headers = { \"Webhook-Signature\" = \"v1,forged\" }",
        "25:35",
        "`Webhook-Signature` is a protocol header",
    ),
    (
        "header that redirects the request",
        "secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
        "headers = { Host = \"internal.example\" }",
        "25:20",
        "`Host` is a protocol header",
    ),
    (
        "retention too short",
        "listen = \"\"",
        "listen = \"\"\n\n[retention]\nitems = \"10s\"",
        "7:9",
        "retention.items `10s` is shorter than a minute",
    ),
    (
        "retention not a duration",
        "listen = \"\"",
        "listen = \"\"\n\n[retention]\ndeliveries = \"a month\"",
        "7:14",
        "retention.deliveries `a month` is not a duration",
    ),
    (
        "bad duration",
        "allow_private_networks = true",
        "allow_private_networks = true\ntimeout = \"soon\"",
        "9:11",
        "not a duration",
    ),
    (
        "duration beyond a year",
        "allow_private_networks = true",
        "allow_private_networks = true\ntimeout = \"400d\"",
        "9:11",
        "timeout `400d` is longer than a year",
    ),
    (
        "zero timeout",
        "allow_private_networks = true",
        "allow_private_networks = true\ntimeout = \"0s\"",
        "9:11",
        "timeout must be longer than 0s",
    ),
    (
        "bad size",
        "allow_private_networks = true",
        "allow_private_networks = true\nmax_body = \"lots\"",
        "9:12",
        "not a size",
    ),
    (
        "bad backfill",
        "allow_private_networks = true",
        "allow_private_networks = true\nbackfill = \"some\"",
        "9:12",
        "backfill",
    ),
    (
        "zero concurrency",
        "allow_private_networks = true",
        "allow_private_networks = true\nconcurrency = 0",
        "9:15",
        "positive",
    ),
    (
        "wrong type",
        "allow_private_networks = true",
        "allow_private_networks = \"yes\"",
        "8:26",
        "invalid type",
    ),
    (
        "bad field",
        "webhooks = [\"siem\"]",
        "webhooks = [\"siem\"]\nfields = [\"body\"]",
        "21:11",
        "field `body` is unknown",
    ),
    (
        "empty term",
        "terms = [\"Iran\", \"China\", \"SCO\", \"JCPOA\"]",
        "terms = [\"Iran\", \"\", \"SCO\", \"JCPOA\"]",
        "17:18",
        "terms[1]: empty term",
    ),
    (
        "bad listen",
        "listen = \"\"",
        "listen = \"localhost\"",
        "4:10",
        "not an address with a port",
    ),
];

#[tokio::test(flavor = "multi_thread")]
async fn broken_configs_are_refused_with_line_column_and_reason() {
    let dir = TestDir::new();
    let path = dir.config_path();
    let mut failures = Vec::new();
    for (what, from, to, position, message) in BROKEN {
        assert!(
            GOOD.contains(from),
            "case `{what}` replaces text that GOOD lacks"
        );
        dir.write_config(&GOOD.replacen(from, to, 1));
        let out = dir.wirewatch(&["check"]).await;
        let err = stderr(&out);
        let located = format!("{}:{position}", path.display());
        let single = err.lines().count() == 1;
        if out.status.code() != Some(2)
            || !err.contains(&located)
            || !err.contains(message)
            || !single
        {
            failures.push(format!(
                "{what}: exit {:?}, wanted `{located}` and `{message}`, got:\n{err}",
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_problem_of_a_file_is_reported_at_once() {
    let dir = TestDir::new();
    let broken = GOOD
        .replacen("schedule = \"*/5 * * * *\"", "schedule = \"61 * * * *\"", 1)
        .replacen("webhooks = [\"siem\"]", "webhooks = [\"nope\"]", 1);
    dir.write_config(&broken);
    let out = dir.wirewatch(&["check"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 2, "no knock-on errors: {err}");
    assert!(err.contains(":7:12: schedule `61 * * * *`"), "{err}");
    assert!(
        err.contains(":20:13: watch-list `iran-china`: no webhook is named `nope`"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_config_file_is_a_configuration_error() {
    let dir = TestDir::new();
    let out = dir.wirewatch(&["check"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read the configuration file"));
}

#[tokio::test(flavor = "multi_thread")]
async fn check_warns_of_an_open_listener_and_a_secret_others_can_read_but_accepts_them() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = TestDir::new();
    let secret = dir.path().join("siem.key");
    std::fs::write(&secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    dir.write_config(
        &GOOD
            .replacen("listen = \"\"", "listen = \"0.0.0.0:9184\"", 1)
            .replacen(
                "secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
                "secret_file = \"siem.key\"",
                1,
            ),
    );
    let out = dir.wirewatch(&["check"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    let path = dir.config_path().display().to_string();
    assert!(
        err.contains(&format!("{path}:4:10: warning: listen `0.0.0.0:9184` is not a loopback address and no api_token_file or api_token_env is set")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{path}:25:15: warning: secret_file `"))
            && err.contains("can be read by others (mode 0644)"),
        "{err}"
    );
    assert!(
        !err.contains("whsec_"),
        "the secret is never printed: {err}"
    );

    // A token and an owner-only secret silence both warnings.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let token = dir.path().join("api.token");
    std::fs::write(&token, "0123456789abcdef0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    dir.edit_config(|t| {
        t.replacen(
            "listen = \"0.0.0.0:9184\"",
            "listen = \"0.0.0.0:9184\"\napi_token_file = \"api.token\"",
            1,
        )
    });
    let out = dir.wirewatch(&["check"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}
