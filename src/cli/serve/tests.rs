use super::*;
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

fn parse(args: &[&str]) -> Result<Config, ConfigError> {
    let mut argv = vec!["imagegate"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).unwrap().serve.into_config()
}

#[test]
fn defaults() {
    let c = parse(&["--log-filter", "info"]).unwrap();
    assert_eq!(c.policy, PolicySource::Builtin);
    assert_eq!(c.listen, "127.0.0.1:8443".parse().unwrap());
    assert_eq!(c.tls, None);
    assert_eq!(c.metrics_listen, None);
    assert_eq!(c.http3_listen, None);
    assert_eq!(c.limits.max_body_bytes, 8 * 1024 * 1024);
    assert_eq!(
        c.limits.max_body_bytes,
        imagegate::server::DEFAULT_MAX_BODY_BYTES
    );
    // The flags' defaults are the library's.
    let mut library = Config::new(PolicySource::Builtin, c.listen);
    library.log.filter.clone_from(&c.log.filter);
    assert_eq!(c, library);
    assert_eq!(c.limits.max_buffered_body_bytes, 64 * 1024 * 1024);
    assert_eq!(c.limits, Limits::default());
    assert_eq!(c.limits.max_connections, 4096);
    assert_eq!(c.shutdown_delay, Duration::ZERO);
    assert_eq!(c.grace_period, Duration::from_secs(30));
    assert_eq!(c.log.format, LogFormat::Text);
    assert_eq!(c.signals, Signals::Handle);
}

#[test]
fn tls_flags_come_in_pairs() {
    assert_eq!(
        parse(&["--tls-cert", "c.pem"]),
        Err(ConfigError::IncompleteTlsPair)
    );
    assert_eq!(
        parse(&["--tls-key", "k.pem"]),
        Err(ConfigError::IncompleteTlsPair)
    );
    assert_eq!(
        parse(&["--client-ca", "ca.pem"]),
        Err(ConfigError::ClientCaWithoutTls)
    );
    let c = parse(&[
        "--tls-cert",
        "c.pem",
        "--tls-key",
        "k.pem",
        "--client-ca",
        "ca.pem",
        "--log-filter",
        "info",
    ])
    .unwrap();
    let tls = c.tls.unwrap();
    assert_eq!(tls.cert, PathBuf::from("c.pem"));
    assert_eq!(tls.client_ca, Some(PathBuf::from("ca.pem")));
}

#[test]
fn http3_needs_tls() {
    assert_eq!(
        parse(&["--http3-listen", "127.0.0.1:8443"]),
        Err(ConfigError::Http3WithoutTls)
    );
    let c = parse(&[
        "--tls-cert",
        "c.pem",
        "--tls-key",
        "k.pem",
        "--http3-listen",
        "127.0.0.1:8443",
        "--log-filter",
        "info",
    ])
    .unwrap();
    // UDP and TCP ports are separate: the same address is fine.
    assert_eq!(c.http3_listen, Some("127.0.0.1:8443".parse().unwrap()));
    assert_eq!(c.listen, "127.0.0.1:8443".parse().unwrap());
}

#[test]
fn the_body_budget_holds_at_least_one_largest_body() {
    assert_eq!(
        parse(&[
            "--max-body-bytes",
            "8MiB",
            "--max-buffered-body-bytes",
            "4MiB"
        ]),
        Err(ConfigError::BodyBudgetTooSmall {
            budget: 4 * 1024 * 1024,
            limit: 8 * 1024 * 1024
        })
    );
    // The default body limit needs a budget of at least 8 MiB.
    assert!(parse(&["--max-buffered-body-bytes", "3MiB"]).is_err());
    let c = parse(&["--max-buffered-body-bytes", "8MiB", "--log-filter", "info"]).unwrap();
    assert_eq!(c.limits.max_buffered_body_bytes, 8 * 1024 * 1024);
}

#[test]
fn ranges_are_checked() {
    assert_eq!(
        parse(&["--max-connections", "0"]),
        Err(ConfigError::Zero {
            flag: "--max-connections"
        })
    );
    assert_eq!(
        parse(&["--header-read-timeout", "0s"]),
        Err(ConfigError::Zero {
            flag: "--header-read-timeout"
        })
    );
    assert_eq!(
        parse(&["--max-body-bytes", "1024MiB"]),
        Err(ConfigError::BodyLimitTooLarge(1024 * 1024 * 1024))
    );
    assert_eq!(
        parse(&["--listen", "127.0.0.1:9", "--metrics-listen", "127.0.0.1:9"]),
        Err(ConfigError::SameListenAddress(
            "127.0.0.1:9".parse().unwrap()
        ))
    );
    assert!(matches!(
        parse(&["--log-filter", "imagegate=nonsense=1"]),
        Err(ConfigError::LogFilter { .. })
    ));
    let c = parse(&["--max-body-bytes", "64KiB", "--log-filter", "debug"]).unwrap();
    assert_eq!(c.limits.max_body_bytes, 65536);
    assert_eq!(c.log.filter, "debug");
}

#[test]
fn bad_flag_values_are_usage_errors() {
    for args in [
        &["--listen", "localhost"][..],
        &["--grace-period", "30"],
        &["--shutdown-delay", "-1s"],
        &["--max-body-bytes", "3MB"],
        &["--log-format", "xml"],
    ] {
        let mut argv = vec!["imagegate"];
        argv.extend_from_slice(args);
        assert!(Cli::try_parse_from(argv).is_err(), "{args:?}");
    }
}

#[test]
fn durations() {
    let ok = [
        ("0", Duration::ZERO),
        ("0s", Duration::ZERO),
        ("30s", Duration::from_secs(30)),
        ("500ms", Duration::from_millis(500)),
        ("2m", Duration::from_secs(120)),
        ("1h", Duration::from_secs(3600)),
        ("1m30s", Duration::from_secs(90)),
        (" 5s ", Duration::from_secs(5)),
        // The policy file's grammar: the same text means the same thing.
        ("7d", Duration::from_secs(7 * 86_400)),
        ("1h 30m", Duration::from_secs(5_400)),
        ("1.5s", Duration::from_millis(1_500)),
    ];
    for (text, want) in ok {
        assert_eq!(parse_duration(text), Ok(want), "{text}");
    }
    for bad in [
        "",
        "s",
        "30",
        "-1s",
        "10x",
        "1s2",
        "99999999999999999999s",
        "18446744073709551615h",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn sizes() {
    assert_eq!(parse_size("3MiB"), Ok(3 * 1024 * 1024));
    assert_eq!(parse_size("10KiB"), Ok(10 * 1024));
    assert_eq!(parse_size("123"), Ok(123));
    for bad in ["", "MiB", "1.5MiB", "-1", "3MB", "18446744073709551615MiB"] {
        assert!(parse_size(bad).is_err(), "{bad:?}");
    }
}
