use super::*;

fn text(m: &Metrics) -> String {
    String::from_utf8(m.render()).unwrap()
}

#[test]
fn every_contract_family_is_rendered_before_any_traffic() {
    let m = Metrics::new();
    let t = text(&m);
    for family in [
        "imagegate_http_requests_total",
        "imagegate_http_request_duration_seconds",
        "imagegate_reviews_total",
        "imagegate_image_decisions_total",
        "imagegate_policy_reloads_total",
        "imagegate_policy_generation",
        "imagegate_build_info",
        "imagegate_connections_open",
        "imagegate_requests_in_flight",
        "imagegate_tls_reloads_total",
        "imagegate_trust_root_refreshes_total",
        "imagegate_trust_root_sources_failing",
        "imagegate_connections_rejected_total",
        "imagegate_records_dropped_total",
        "imagegate_transport_requests_total",
        "imagegate_transport_connections_open",
    ] {
        assert!(t.contains(&format!("# TYPE {family} ")), "{family} missing");
    }
    assert!(t.contains(&format!(
        "imagegate_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));
}

#[test]
fn buckets_span_25us_to_10s() {
    assert_eq!(DURATION_BUCKETS.first(), Some(&0.000_025));
    assert_eq!(DURATION_BUCKETS.last(), Some(&10.0));
    assert!(DURATION_BUCKETS.windows(2).all(|w| w[0] < w[1]));
    let t = text(&Metrics::new());
    assert!(t.contains("le=\"0.000025\""));
    assert!(t.contains("le=\"10\""));
}

#[test]
fn counters_land_on_their_labels() {
    let m = Metrics::new();
    m.observe_request(PathLabel::ImagePolicy, 200, Duration::from_micros(30));
    m.observe_request(PathLabel::Other, 418, Duration::from_micros(30));
    m.observe_review(Api::AdmissionReview, false, Mode::Audit);
    m.observe_image(Reason::TagMissing);
    m.observe_policy_reload(ReloadResult::Error);
    m.set_policy_generation(7);
    m.observe_decode_error(DecodeErrorKind::NotJson);
    let t = text(&m);
    assert!(t.contains("imagegate_http_requests_total{code=\"200\",path=\"imagepolicy\"} 1"));
    assert!(t.contains("imagegate_http_requests_total{code=\"other\",path=\"other\"} 1"));
    assert!(t.contains(
        "imagegate_reviews_total{api=\"admissionreview\",decision=\"deny\",mode=\"audit\"} 1"
    ));
    assert!(
        t.contains("imagegate_image_decisions_total{decision=\"deny\",reason=\"tag_missing\"} 1")
    );
    assert!(t.contains("imagegate_image_decisions_total{decision=\"allow\",reason=\"allowed\"} 0"));
    assert!(t.contains("imagegate_policy_reloads_total{result=\"error\"} 1"));
    assert!(t.contains("imagegate_policy_reloads_total{result=\"success\"} 0"));
    assert!(t.contains("imagegate_policy_generation 7"));
    assert!(t.contains("imagegate_decode_errors_total{kind=\"not_json\"} 1"));
    assert!(t.contains("imagegate_decode_errors_total{kind=\"too_deep\"} 0"));
}

#[test]
fn path_and_code_labels_are_closed() {
    for p in [
        "/",
        "/imagepolicy/",
        "/IMAGEPOLICY",
        "/validate?x",
        "//validate",
    ] {
        assert_eq!(PathLabel::from_path(p), PathLabel::Other, "{p}");
    }
    for (i, p) in PathLabel::ALL.iter().enumerate() {
        assert_eq!(p.index(), i);
    }
    for (i, c) in CodeLabel::ALL.iter().enumerate() {
        assert_eq!(c.index(), i);
        if *c != CodeLabel::Other {
            let code: u16 = c.as_str().parse().unwrap();
            assert_eq!(CodeLabel::from_status(code), *c);
        }
    }
    assert_eq!(CodeLabel::from_status(599), CodeLabel::Other);
}

#[test]
fn transport_families_are_closed_and_separate() {
    let m = Metrics::new();
    m.observe_transport_request(TransportLabel::Quic, 200);
    m.observe_transport_request(TransportLabel::Quic, 999);
    m.transport_connections_open(TransportLabel::Tcp).inc();
    let t = text(&m);
    assert!(t.contains("imagegate_transport_requests_total{code=\"200\",transport=\"quic\"} 1"));
    assert!(t.contains("imagegate_transport_requests_total{code=\"other\",transport=\"quic\"} 1"));
    assert!(t.contains("imagegate_transport_requests_total{code=\"200\",transport=\"tcp\"} 0"));
    assert!(t.contains("imagegate_transport_connections_open{transport=\"tcp\"} 1"));
    assert!(t.contains("imagegate_transport_connections_open{transport=\"quic\"} 0"));
    // The transport-less contract families are untouched by these.
    assert!(t.contains("imagegate_connections_open 0"));
    assert!(t.contains("imagegate_connections_rejected_total 0"));
    for (i, transport) in TransportLabel::ALL.iter().enumerate() {
        assert_eq!(transport.index(), i);
    }
}

#[test]
fn two_instances_do_not_share_counts() {
    let a = Metrics::new();
    let b = Metrics::new();
    a.observe_connection_rejected();
    assert!(text(&a).contains("imagegate_connections_rejected_total 1"));
    assert!(text(&b).contains("imagegate_connections_rejected_total 0"));
}
