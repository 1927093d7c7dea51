use std::time::Duration;

use session_core::{Engine, ExecutionOptions, Result, async_sessionmaker, text};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Prints each span of the session stack when it closes (fields and timings), and slow
/// statements; an OpenTelemetry layer (`tracing-opentelemetry`) takes the same spans.
fn subscriber<W>(writer: W) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter("session_core::span=info,session_core::slow=warn")
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(writer)
        .finish()
}

async fn run(url: &str) -> Result<()> {
    let engine = Engine::builder(url)
        // instances x pool_size (+ admin connections) must stay below max_connections
        .pool_size(10)
        .checkout_timeout(Duration::from_secs(5))
        .slow_statement_threshold(Duration::from_millis(250))
        .application_name("orders-api")
        .build()?;
    engine
        .transaction(async |conn| {
            conn.batch_execute(
                "CREATE SCHEMA tenant_a;
                 CREATE TABLE tenant_a.note (id serial PRIMARY KEY, body text NOT NULL)",
            )
            .await
        })
        .await?;

    // One factory per tenant: its sessions' tables are tenant_a's.
    let tenant_a = async_sessionmaker(engine.clone())
        .execution_options(ExecutionOptions::new().schema_translate_map([(None, "tenant_a")]));
    tenant_a
        .begin(async |session| {
            session
                .execute(text("INSERT INTO note (body) VALUES ($1)").bind("hello"))
                .await?;
            session.execute(text("SELECT pg_sleep(0.3)")).await?;
            Ok::<_, session_core::Error>(())
        })
        .await?;

    let pool = engine.status();
    println!(
        "{pool}; opened {}, waits {}, wait timeouts {}",
        pool.opened, pool.waits, pool.wait_timeouts
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing::subscriber::set_global_default(subscriber(std::io::stderr))
        .expect("no other subscriber");
    run(&std::env::var("DATABASE_URL").expect("DATABASE_URL")).await
}
