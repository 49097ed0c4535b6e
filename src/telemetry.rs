//! Tracing setup: human-readable logs on a terminal, JSON lines otherwise or when asked; spans
//! exported over OTLP/HTTP when `telemetry.otlp_endpoint` is set. Trace context crosses the
//! queue as a W3C `traceparent` ([`current_traceparent`], [`continue_trace`]), so one trace runs
//! from a webhook to the resources it applied.

use std::collections::HashMap;
use std::io::IsTerminal;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, LogSettings, TelemetrySettings};

/// The W3C trace context header, as carried in queue message headers.
pub const TRACEPARENT: &str = "traceparent";

/// Why traces cannot be exported as configured.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built (e.g. an invalid endpoint).
    #[error("telemetry.otlp_endpoint: {0}")]
    Exporter(String),
}

/// Keeps the span exporter running; dropping it flushes and stops the exporter.
#[derive(Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("flushing traces failed: {e}");
        }
    }
}

/// Installs the global subscriber; `RUST_LOG` wins over `log.level`. Spans are exported only
/// when `telemetry.otlp_endpoint` is set; otherwise no exporter exists at all.
pub fn init(
    settings: &LogSettings,
    telemetry: &TelemetrySettings,
) -> Result<Telemetry, TelemetryError> {
    let provider = match telemetry.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) {
        Some(endpoint) => Some(otlp_provider(endpoint)?),
        None => None,
    };
    let tracer = provider.as_ref().map(|p| p.tracer("capstan"));
    install(settings, std::io::stderr, tracer);
    Ok(Telemetry { provider })
}

/// Installs the global subscriber writing to `writer`, without exporting spans; a second call
/// is a no-op.
pub fn init_with_writer<W>(settings: &LogSettings, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    install(settings, writer, None);
}

/// The exporter's provider: batches spans on its own thread and posts them to `endpoint`.
fn otlp_provider(endpoint: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("capstan")
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

fn install<W>(settings: &LogSettings, writer: W, tracer: Option<opentelemetry_sdk::trace::Tracer>)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match settings.format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer);
    let fmt = if json {
        fmt.json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed()
    } else {
        fmt.boxed()
    };
    let otel = tracer.map(|t| tracing_opentelemetry::layer().with_tracer(t));
    // try_init: tests and embedded uses may already have installed a subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init();
}

/// The current span's trace context as a W3C `traceparent` value; `None` when no trace is
/// being recorded (no exporter configured).
pub fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Makes `span` (not yet entered) a child of the trace a message carried; a missing or
/// malformed `traceparent` leaves `span` the root of a new trace.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(value) = traceparent else { return };
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), value.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        // Fails only when no OpenTelemetry layer records spans: then there is no trace to join.
        let _ = span.set_parent(cx);
    }
}

/// The request span of the HTTP server: tracing-actix-web's, joined to the caller's trace when
/// the request carries a `traceparent` (a CI job, a proxy, another traced service).
pub struct HttpRootSpan;

impl tracing_actix_web::RootSpanBuilder for HttpRootSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        let span = tracing_actix_web::root_span!(request);
        let traceparent = request
            .headers()
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok());
        continue_trace(&span, traceparent);
        span
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}
