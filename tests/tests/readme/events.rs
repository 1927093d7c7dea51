use chrono::SubsecRound;
use session_core::{
    async_sessionmaker, create_async_engine, select, Entity, IsolationLevel, MetaData, Obj,
    Result, RetryPolicy, TransactionOptions,
};

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "account")]
struct Account {
    #[entity(primary_key)]
    id: i32,
    balance: i64,
    updated_at: Option<chrono::NaiveDateTime>,
}

async fn run(url: &str) -> Result<()> {
    let engine = create_async_engine(url)?;
    let metadata = MetaData::new().with::<Account>();
    engine.transaction(async |conn| metadata.create_all(conn).await).await?;
    let maker = async_sessionmaker(engine);

    // The everyday "updated_at" hook, for every session of this factory: what a before_update
    // listener changes is written by the same UPDATE. (PostgreSQL keeps microseconds; a
    // timestamp with nanoseconds is refused rather than silently rounded, so round it.)
    maker.events().before_update::<Account>(|account| {
        account.updated_at = Some(chrono::Utc::now().naive_utc().trunc_subsecs(6));
        Ok(())
    });

    let session = maker.session();
    session.add_all([
        &Obj::new(Account { id: 1, balance: 100, ..Default::default() }),
        &Obj::new(Account { id: 2, balance: 0, ..Default::default() }),
    ])?;
    session.commit().await?;

    // A transfer at SERIALIZABLE, replayed in a fresh session when PostgreSQL answers a
    // conflict with a serialization failure (40001) or a deadlock (40P01).
    let policy = RetryPolicy::new(5).transaction_options(
        TransactionOptions::new().isolation_level(IsolationLevel::Serializable),
    );
    let done = maker
        .run_retrying(policy, async |session| {
            let from = session.get_one::<Account>(1).await?;
            let to = session.get_one::<Account>(2).await?;
            from.write()?.balance -= 30;
            to.write()?.balance += 30;
            Ok(())
        })
        .await?;
    println!("transferred after {} attempt(s)", done.attempts);

    let accounts = maker.session().scalars(select::<Account>()).await?.all();
    for account in &accounts {
        let account = account.read()?;
        println!("{}: {} (updated {:?})", account.id, account.balance, account.updated_at);
    }
    Ok(())
}
