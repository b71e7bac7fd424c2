//! Prometheus metrics, registered once in the default registry that
//! `pingora-prometheus` serves on `server.metrics_listen`.

use std::cell::RefCell;
use std::sync::LazyLock;
use std::thread::LocalKey;

use crate::config::Api;
use pingora_prometheus::prometheus::core::{Collector, Desc};
use pingora_prometheus::prometheus::proto::MetricFamily;
use pingora_prometheus::prometheus::{
    self, exponential_buckets, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts,
};

/// Most series of one metric a thread keeps at hand (`request`,
/// `upstream_time`): a label lookup hashes every label value under a lock,
/// a kept series is a short scan. Past this the thread's list starts over.
/// Those metrics' series are never removed, so a kept one stays current.
pub const SERIES_CACHED_PER_THREAD: usize = 64;

/// A thread's kept series of one metric, by their label values.
type KeptSeries<K, M> = RefCell<Vec<(K, M)>>;

thread_local! {
    static REQUEST_SERIES: KeptSeries<(RequestClass, &'static str), IntCounter> =
        const { RefCell::new(Vec::new()) };
    static UPSTREAM_SERIES: KeptSeries<Box<str>, Histogram> =
        const { RefCell::new(Vec::new()) };
    static FORWARDED_SERIES: KeptSeries<(Api, &'static str), IntCounter> =
        const { RefCell::new(Vec::new()) };
}

/// Runs `record` on the series whose labels `is` picks from this thread's
/// `kept`, or on the one `look_up` finds in the registry, which is kept then.
fn with_kept_series<K: 'static, M: 'static>(
    kept: &'static LocalKey<KeptSeries<K, M>>,
    is: impl Fn(&K) -> bool,
    look_up: impl FnOnce() -> (K, M),
    record: impl FnOnce(&M),
) {
    kept.with(|kept| {
        let mut kept = kept.borrow_mut();
        if let Some((_, series)) = kept.iter().find(|(labels, _)| is(labels)) {
            return record(series);
        }
        let (labels, series) = look_up();
        record(&series);
        if kept.len() >= SERIES_CACHED_PER_THREAD {
            kept.clear();
        }
        kept.push((labels, series));
    });
}

/// Labels of one metric, as a closed set: every value is known here, so the
/// metrics table of `docs/src/operations.md` can be checked against them.
pub trait Label: Copy + 'static {
    /// Every value of the label.
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
}

macro_rules! label {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),+ }

        impl Label for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];
            fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
    };
}

label!(
    /// `class` of `dsgw_requests_total`.
    RequestClass {
        Proxied => "proxied",
        Rejected => "rejected",
        Health => "health",
        Auth => "auth",
    }
);

label!(
    /// `reason` of `dsgw_logins_failed_total`.
    LoginFailure {
        BadState => "bad_state",
        Denied => "denied",
        DocusignError => "docusign_error",
        InvalidCallback => "invalid_callback",
        CodeExchange => "code_exchange",
        Userinfo => "userinfo",
        StoreUnavailable => "store_unavailable",
        AccessDenied => "access_denied",
    }
);

label!(
    /// `outcome` of `dsgw_token_refreshes_total`.
    RefreshOutcome {
        Ok => "ok",
        InvalidGrant => "invalid_grant",
        Failed => "failed",
        MissingRefresh => "missing_refresh",
        StoreUnavailable => "store_unavailable",
    }
);

label!(
    /// `outcome` of `dsgw_service_token_mints_total`.
    MintOutcome {
        Ok => "ok",
        ConsentRequired => "consent_required",
        Refused => "refused",
        Unavailable => "unavailable",
    }
);

label!(
    /// `reason` of `dsgw_ratelimited_total`: the gateway's own 429s (an
    /// account's hourly or burst limit seen as used up, a session over
    /// `limits.session_hourly`) and DocuSign's 429s passed through.
    RateLimitReason {
        DocusignHourly => "docusign_hourly",
        DocusignBurst => "docusign_burst",
        SessionHourly => "session_hourly",
        Docusign429 => "docusign_429",
    }
);

label!(
    /// `outcome` of `dsgw_webhook_received_total`.
    WebhookReceived {
        Accepted => "accepted",
        Duplicate => "duplicate",
        InvalidSignature => "invalid_signature",
        TooLarge => "too_large",
        StoreUnavailable => "store_unavailable",
    }
);

label!(
    /// `outcome` of `dsgw_webhook_deliveries_total`.
    WebhookDelivery {
        Delivered => "delivered",
        Failed => "failed",
        Dead => "dead",
    }
);

/// `api` of `dsgw_forwarded_requests_total`: the API of `docusign.apis`.
impl Label for Api {
    const ALL: &'static [Self] = &Api::ALL;
    fn as_str(self) -> &'static str {
        Api::as_str(self)
    }
}

pub struct Metrics {
    /// `class`: proxied, auth, rejected, health; `status`: the HTTP status.
    pub requests: IntCounterVec,
    /// `api`, `status`: requests forwarded to DocuSign (`class` proxied).
    pub forwarded: IntCounterVec,
    /// Time to DocuSign's response headers, per REST host.
    pub upstream_seconds: HistogramVec,
    pub logins_started: IntCounter,
    pub logins_completed: IntCounter,
    /// `reason`: bad_state, denied, docusign_error, invalid_callback, code_exchange, userinfo.
    pub logins_failed: IntCounterVec,
    /// `outcome`: ok, invalid_grant, failed, missing_refresh.
    pub refreshes: IntCounterVec,
    pub refresh_seconds: Histogram,
    /// Requests replayed after DocuSign answered 401 and the token was refreshed.
    pub replays: IntCounter,
    /// Last seen `X-RateLimit-Remaining`, `X-RateLimit-Limit` and
    /// `X-BurstLimit-Remaining` per account.
    pub ratelimit_remaining: IntGaugeVec,
    pub ratelimit_limit: IntGaugeVec,
    pub burstlimit_remaining: IntGaugeVec,
    /// `account`, `reason`: calls answered 429 (see [`RateLimitReason`]).
    pub ratelimited: IntCounterVec,
    /// TLS handshakes on the gateway's listener that failed or timed out.
    pub tls_handshake_failures: IntCounter,
    /// `service`: the `[[service]]` name; `outcome`: [`MintOutcome`].
    pub service_mints: IntCounterVec,
    /// `webhook`, `outcome`: Connect messages received ([`WebhookReceived`]).
    pub webhook_received: IntCounterVec,
    /// `webhook`, `outcome`: delivery attempts' outcomes ([`WebhookDelivery`]).
    pub webhook_deliveries: IntCounterVec,
    /// `webhook`: messages stored and not delivered or dead yet.
    pub webhook_pending: IntGaugeVec,
    /// `webhook`: from acceptance to the app's 2xx.
    pub webhook_delivery_seconds: HistogramVec,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let latency = exponential_buckets(0.005, 2.0, 14).unwrap_or_default();
    let m = Metrics {
        requests: IntCounterVec::new(
            Opts::new(
                "dsgw_requests_total",
                "Requests answered, by class and status",
            ),
            &["class", "status"],
        )
        .expect("metric"),
        forwarded: IntCounterVec::new(
            Opts::new(
                "dsgw_forwarded_requests_total",
                "Requests forwarded to DocuSign, by API and status",
            ),
            &["api", "status"],
        )
        .expect("metric"),
        upstream_seconds: HistogramVec::new(
            HistogramOpts::new(
                "dsgw_upstream_duration_seconds",
                "Time until DocuSign's response headers arrived, by REST host",
            )
            .buckets(latency.clone()),
            &["host"],
        )
        .expect("metric"),
        logins_started: IntCounter::new("dsgw_logins_started_total", "Logins started")
            .expect("metric"),
        logins_completed: IntCounter::new("dsgw_logins_completed_total", "Logins completed")
            .expect("metric"),
        logins_failed: IntCounterVec::new(
            Opts::new("dsgw_logins_failed_total", "Logins failed, by reason"),
            &["reason"],
        )
        .expect("metric"),
        refreshes: IntCounterVec::new(
            Opts::new("dsgw_token_refreshes_total", "Token refreshes, by outcome"),
            &["outcome"],
        )
        .expect("metric"),
        refresh_seconds: Histogram::with_opts(
            HistogramOpts::new(
                "dsgw_token_refresh_duration_seconds",
                "Duration of refresh_token grants",
            )
            .buckets(latency),
        )
        .expect("metric"),
        replays: IntCounter::new(
            "dsgw_replays_total",
            "Requests replayed after a 401 and a refresh",
        )
        .expect("metric"),
        ratelimit_remaining: account_gauge(
            "dsgw_docusign_ratelimit_remaining",
            "Last seen X-RateLimit-Remaining, by account",
        ),
        ratelimit_limit: account_gauge(
            "dsgw_docusign_ratelimit_limit",
            "Last seen X-RateLimit-Limit, by account",
        ),
        burstlimit_remaining: account_gauge(
            "dsgw_docusign_burstlimit_remaining",
            "Last seen X-BurstLimit-Remaining, by account",
        ),
        ratelimited: IntCounterVec::new(
            Opts::new(
                "dsgw_ratelimited_total",
                "Calls answered 429 (by the gateway or DocuSign), by account and reason",
            ),
            &["account", "reason"],
        )
        .expect("metric"),
        tls_handshake_failures: IntCounter::new(
            "dsgw_tls_handshake_failures_total",
            "TLS handshakes on the gateway's listener that failed or timed out",
        )
        .expect("metric"),
        service_mints: IntCounterVec::new(
            Opts::new(
                "dsgw_service_token_mints_total",
                "JWT grants of service mode, by service and outcome",
            ),
            &["service", "outcome"],
        )
        .expect("metric"),
        webhook_received: IntCounterVec::new(
            Opts::new(
                "dsgw_webhook_received_total",
                "Connect messages received, by webhook and outcome",
            ),
            &["webhook", "outcome"],
        )
        .expect("metric"),
        webhook_deliveries: IntCounterVec::new(
            Opts::new(
                "dsgw_webhook_deliveries_total",
                "Webhook delivery attempts to the app, by webhook and outcome",
            ),
            &["webhook", "outcome"],
        )
        .expect("metric"),
        webhook_pending: IntGaugeVec::new(
            Opts::new(
                "dsgw_webhook_pending",
                "Webhook messages stored and not delivered yet, by webhook",
            ),
            &["webhook"],
        )
        .expect("metric"),
        webhook_delivery_seconds: HistogramVec::new(
            HistogramOpts::new(
                "dsgw_webhook_delivery_seconds",
                "Time from a webhook message's acceptance to the app's 2xx, by webhook",
            )
            .buckets(exponential_buckets(0.005, 2.0, 20).unwrap_or_default()),
            &["webhook"],
        )
        .expect("metric"),
    };
    for c in m.collectors() {
        let _ = prometheus::register(c);
    }
    m
});

impl Metrics {
    /// Every metric of the struct, for registration.
    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.requests.clone()),
            Box::new(self.forwarded.clone()),
            Box::new(self.upstream_seconds.clone()),
            Box::new(self.logins_started.clone()),
            Box::new(self.logins_completed.clone()),
            Box::new(self.logins_failed.clone()),
            Box::new(self.refreshes.clone()),
            Box::new(self.refresh_seconds.clone()),
            Box::new(self.replays.clone()),
            Box::new(self.ratelimit_remaining.clone()),
            Box::new(self.ratelimit_limit.clone()),
            Box::new(self.burstlimit_remaining.clone()),
            Box::new(self.ratelimited.clone()),
            Box::new(self.tls_handshake_failures.clone()),
            Box::new(self.service_mints.clone()),
            Box::new(self.webhook_received.clone()),
            Box::new(self.webhook_deliveries.clone()),
            Box::new(self.webhook_pending.clone()),
            Box::new(self.webhook_delivery_seconds.clone()),
        ]
    }
}

fn account_gauge(name: &str, help: &str) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), &["account"]).expect("metric")
}

pub fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    /// Counts a request (`status` is one of few labels, see
    /// `proxy::respond`). Its series is looked up once per thread.
    pub fn request(&self, class: RequestClass, status: &'static str) {
        with_kept_series(
            &REQUEST_SERIES,
            |&(c, s)| c == class && s == status,
            || {
                let counter = self.requests.with_label_values(&[class.as_str(), status]);
                ((class, status), counter)
            },
            IntCounter::inc,
        );
    }

    /// Counts a forwarded request by its API. Its series is looked up once
    /// per thread.
    pub fn forwarded(&self, api: Api, status: &'static str) {
        with_kept_series(
            &FORWARDED_SERIES,
            |&(a, s)| a == api && s == status,
            || {
                let counter = self.forwarded.with_label_values(&[api.as_str(), status]);
                ((api, status), counter)
            },
            IntCounter::inc,
        );
    }

    /// Records the time to an answer's headers from `host` (a REST host's
    /// authority). Its series is looked up once per thread.
    pub fn upstream_time(&self, host: &str, seconds: f64) {
        with_kept_series(
            &UPSTREAM_SERIES,
            |kept| **kept == *host,
            || {
                (
                    host.into(),
                    self.upstream_seconds.with_label_values(&[host]),
                )
            },
            |histogram| histogram.observe(seconds),
        );
    }

    pub fn login_failed(&self, reason: LoginFailure) {
        self.logins_failed
            .with_label_values(&[reason.as_str()])
            .inc();
    }

    pub fn service_minted(&self, service: &str, outcome: MintOutcome) {
        self.service_mints
            .with_label_values(&[service, outcome.as_str()])
            .inc();
    }

    pub fn webhook_received(&self, webhook: &str, outcome: WebhookReceived) {
        self.webhook_received
            .with_label_values(&[webhook, outcome.as_str()])
            .inc();
    }

    pub fn webhook_delivery(&self, webhook: &str, outcome: WebhookDelivery) {
        self.webhook_deliveries
            .with_label_values(&[webhook, outcome.as_str()])
            .inc();
    }

    pub fn refreshed(&self, outcome: RefreshOutcome) {
        self.refreshes.with_label_values(&[outcome.as_str()]).inc();
    }

    pub fn ratelimited(&self, account: &str, reason: RateLimitReason) {
        self.ratelimited
            .with_label_values(&[account, reason.as_str()])
            .inc();
    }

    /// Sets an account's rate gauges (a value not seen leaves its gauge).
    /// `gauges` keeps the account's series once looked up, so an account
    /// seen again costs three stores, not three label lookups.
    pub fn account_rate(
        &self,
        account: &str,
        gauges: &mut AccountGauges,
        limit: Option<u64>,
        remaining: Option<u64>,
        burst: Option<u64>,
    ) {
        let series = [
            (&self.ratelimit_limit, &mut gauges.limit, limit),
            (&self.ratelimit_remaining, &mut gauges.remaining, remaining),
            (
                &self.burstlimit_remaining,
                &mut gauges.burst_remaining,
                burst,
            ),
        ];
        for (vec, gauge, value) in series {
            if let Some(v) = value {
                let v = i64::try_from(v).unwrap_or(i64::MAX);
                gauge
                    .get_or_insert_with(|| vec.with_label_values(&[account]))
                    .set(v);
            }
        }
    }

    /// Drops an account's series (its rate state was evicted).
    pub fn forget_account(&self, account: &str) {
        for gauge in [
            &self.ratelimit_limit,
            &self.ratelimit_remaining,
            &self.burstlimit_remaining,
        ] {
            let _ = gauge.remove_label_values(&[account]);
        }
        for reason in RateLimitReason::ALL {
            let _ = self
                .ratelimited
                .remove_label_values(&[account, reason.as_str()]);
        }
    }
}

/// One account's rate-limit series, each looked up when first set (a
/// series is created only for a value seen). See [`Metrics::account_rate`].
#[derive(Clone, Debug, Default)]
pub struct AccountGauges {
    limit: Option<IntGauge>,
    remaining: Option<IntGauge>,
    burst_remaining: Option<IntGauge>,
}

/// A gauge whose value is read when scraped (live sessions, pending logins).
struct LiveGauge {
    gauge: IntGauge,
    read: Box<dyn Fn() -> i64 + Send + Sync>,
}

impl Collector for LiveGauge {
    fn desc(&self) -> Vec<&Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.gauge.set((self.read)());
        self.gauge.collect()
    }
}

/// Registers a gauge read at scrape time. A second registration of the same
/// name (a second gateway in one process) is ignored.
pub fn register_live_gauge(name: &str, help: &str, read: impl Fn() -> i64 + Send + Sync + 'static) {
    if let Ok(gauge) = IntGauge::new(name, help) {
        let _ = prometheus::register(Box::new(LiveGauge {
            gauge,
            read: Box::new(read),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_kept_per_thread_count_in_the_registrys_series() {
        let m = metrics();
        let hosts: Vec<String> = (0..SERIES_CACHED_PER_THREAD + 5)
            .map(|i| format!("series-cache-{i}.example:443"))
            .collect();
        for round in 0..3 {
            for host in &hosts {
                m.upstream_time(host, 0.25);
            }
            let first = m.upstream_seconds.with_label_values(&[&hosts[0]]);
            assert_eq!(first.get_sample_count(), round + 1);
        }
        let last = m
            .upstream_seconds
            .with_label_values(&[&hosts[hosts.len() - 1]]);
        assert_eq!(last.get_sample_count(), 3);
        assert_eq!(last.get_sample_sum(), 0.75);
        // Another thread finds the same series.
        std::thread::spawn(|| metrics().upstream_time("series-cache-0.example:443", 1.0))
            .join()
            .unwrap();
        let first = m.upstream_seconds.with_label_values(&[&hosts[0]]);
        assert_eq!(first.get_sample_count(), 4);

        let counter = || m.requests.with_label_values(&["auth", "599"]).get();
        let before = counter();
        for _ in 0..3 {
            m.request(RequestClass::Auth, "599");
        }
        assert_eq!(counter(), before + 3);
    }

    /// The row for `metric` in the metrics table of the operations page.
    fn documented_row(metric: &str) -> &'static str {
        include_str!("../../docs/src/operations.md")
            .lines()
            .find(|l| l.starts_with(&format!("| `{metric}` |")))
            .unwrap_or_else(|| panic!("docs/src/operations.md has no row for {metric}"))
    }

    fn documented<L: Label>(metric: &str) {
        let row = documented_row(metric);
        let (_, labels) = row.split_once('(').expect("labels in parentheses");
        let (labels, _) = labels.split_once(')').expect("labels in parentheses");
        let mut listed: Vec<&str> = labels.split(',').map(str::trim).collect();
        let mut known: Vec<&str> = L::ALL.iter().map(|l| l.as_str()).collect();
        listed.sort();
        known.sort();
        assert_eq!(listed, known, "row of {metric}");
    }

    #[test]
    fn the_docs_list_every_metric_and_label_value() {
        // The gauges registered outside `Metrics` (logging, the stores).
        let live = [
            "dsgw_sessions",
            "dsgw_log_lines_dropped",
            "dsgw_pending_logins",
        ];
        for c in metrics().collectors() {
            for desc in c.desc() {
                documented_row(&desc.fq_name);
            }
        }
        for name in live {
            documented_row(name);
        }
        documented::<RequestClass>("dsgw_requests_total");
        documented::<Api>("dsgw_forwarded_requests_total");
        documented::<LoginFailure>("dsgw_logins_failed_total");
        documented::<RefreshOutcome>("dsgw_token_refreshes_total");
        documented::<MintOutcome>("dsgw_service_token_mints_total");
        documented::<RateLimitReason>("dsgw_ratelimited_total");
        documented::<WebhookReceived>("dsgw_webhook_received_total");
        documented::<WebhookDelivery>("dsgw_webhook_deliveries_total");
    }

    #[test]
    fn metrics_are_gathered() {
        metrics().logins_started.inc();
        metrics().requests.with_label_values(&["auth", "302"]).inc();
        register_live_gauge("dsgw_test_gauge", "test", || 7);
        let names: Vec<String> = prometheus::gather()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        assert!(names.contains(&"dsgw_logins_started_total".to_string()));
        assert!(names.contains(&"dsgw_requests_total".to_string()));
        let gauge = prometheus::gather()
            .into_iter()
            .find(|f| f.name() == "dsgw_test_gauge")
            .unwrap();
        assert_eq!(gauge.get_metric()[0].get_gauge().value(), 7.0);
    }
}
