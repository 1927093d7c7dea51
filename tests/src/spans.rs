//! A `tracing` layer that records spans with their fields, for tests that check what an
//! OpenTelemetry exporter would be given.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, filter::Targets};

/// One recorded span.
#[derive(Debug, Clone, Default)]
pub struct CapturedSpan {
    /// The span's name (`statement`, `checkout`, `flush`, `commit`).
    pub name: String,
    /// Its fields as recorded, values formatted.
    pub fields: BTreeMap<String, String>,
    /// The name of the span it was opened in, if any.
    pub parent: Option<String>,
    /// Index of the parent in [`SpanCapture::spans`].
    pub parent_index: Option<usize>,
    /// The span was closed.
    pub closed: bool,
}

impl CapturedSpan {
    /// Field `name`, when recorded.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// Recorded spans and WARN events; install with [`SpanCapture::install`].
#[derive(Clone, Default)]
pub struct SpanCapture {
    spans: Arc<Mutex<Vec<CapturedSpan>>>,
    events: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
}

struct Index(usize);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
}

impl SpanCapture {
    /// Records spans and events of the `session_core` targets on this thread (use a
    /// current-thread runtime) until the guard drops.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let filter = Targets::new().with_target("session_core", tracing::Level::INFO);
        let subscriber = tracing_subscriber::registry().with(self.clone().with_filter(filter));
        tracing::subscriber::set_default(subscriber)
    }

    /// Every span recorded so far, in the order they were opened.
    pub fn spans(&self) -> Vec<CapturedSpan> {
        self.spans.lock().unwrap().clone()
    }

    /// The spans named `name`.
    pub fn named(&self, name: &str) -> Vec<CapturedSpan> {
        self.spans()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }

    /// Every event recorded (its fields; the message under `message`, the target under
    /// `target`).
    pub fn events(&self) -> Vec<BTreeMap<String, String>> {
        self.events.lock().unwrap().clone()
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        self.spans.lock().unwrap().clear();
        self.events.lock().unwrap().clear();
    }
}

impl<S> Layer<S> for SpanCapture
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut span = CapturedSpan {
            name: attrs.metadata().name().to_string(),
            ..CapturedSpan::default()
        };
        attrs.record(&mut Fields(&mut span.fields));
        let Some(me) = ctx.span(id) else { return };
        if let Some(parent) = me.parent() {
            span.parent = Some(parent.name().to_string());
            span.parent_index = parent.extensions().get::<Index>().map(|i| i.0);
        }
        let mut spans = self.spans.lock().unwrap();
        spans.push(span);
        me.extensions_mut().insert(Index(spans.len() - 1));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(me) = ctx.span(id) else { return };
        let Some(index) = me.extensions().get::<Index>().map(|i| i.0) else {
            return;
        };
        let mut spans = self.spans.lock().unwrap();
        values.record(&mut Fields(&mut spans[index].fields));
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        fields.insert("target".into(), event.metadata().target().to_string());
        fields.insert("level".into(), event.metadata().level().to_string());
        self.events.lock().unwrap().push(fields);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(me) = ctx.span(&id) else { return };
        let Some(index) = me.extensions().get::<Index>().map(|i| i.0) else {
            return;
        };
        self.spans.lock().unwrap()[index].closed = true;
    }
}
